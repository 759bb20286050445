using NaturalGradient.Optim;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using NaturalGradient.Training.Data;

namespace NaturalGradient.Training;

/// <summary>
/// Everything a run's future depends on, captured into and restored from a <see cref="NaturalGradientStateDict"/>:
/// the model's parameters and buffers (<c>model.*</c>), the method's state (<c>optimizer.*</c>) and the state of every
/// generator (<c>rng.global</c>: torch's default one; <c>rng.batch_order</c>: the shuffling generator as it was at the
/// start of the epoch in progress; <c>rng.optimizer</c>; <c>rng.metric_batches</c>).
/// </summary>
internal sealed class RunStreams(Module<Tensor, Tensor> model, ITrainingOptimizer optimizer, BatchIterator batches,
    Generator generator, MetricBatchSampler sampler)
{
    public Module<Tensor, Tensor> Model => model;

    public long[]? InputShape { get; set; }

    /// <summary>Captures the run's state; <paramref name="epochStart"/> is the batch-order generator at the start of the epoch in progress.</summary>
    public void Capture(NaturalGradientStateDict state, Tensor epochStart)
    {
        foreach (var (name, p) in model.named_parameters()) state.SetTensor("model." + name, p);
        foreach (var (name, b) in model.named_buffers()) state.SetTensor("model." + name, b);
        optimizer.ExportState("optimizer.", state);
        using (var g = Generator.Default) using (var s = g.get_state()) state.SetTensor("rng.global", s);
        state.SetTensor("rng.batch_order", epochStart);
        using (var s = generator.get_state()) state.SetTensor("rng.optimizer", s);
        using (var s = sampler.GetState()) state.SetTensor("rng.metric_batches", s);
    }

    /// <summary>Restores a captured state; the batch-order generator is left at the start of the epoch in progress.</summary>
    /// <exception cref="InvalidDataException">A tensor is missing or has the wrong shape, or the method's state does not fit.</exception>
    public void Restore(NaturalGradientStateDict state)
    {
        var weights = new List<(Tensor Target, Tensor Value)>();
        try
        {
            foreach (var (name, p) in model.named_parameters()) weights.Add((p, state.GetTensor("model." + name, p.shape)));
            foreach (var (name, b) in model.named_buffers()) weights.Add((b, state.GetTensor("model." + name, b.shape)));
            var expected = weights.Count;
            int stored = state.Tensors.Keys.Count(k => k.StartsWith("model.", StringComparison.Ordinal));
            if (stored != expected)
                throw new InvalidDataException($"the checkpoint holds {stored} model tensors, but this model has {expected}");
            foreach (var (target, value) in weights)
                if (target.dtype != value.dtype)
                    throw new InvalidDataException($"the checkpoint's weights are {value.dtype}, but this model is {target.dtype}");
            using (var g = Generator.Default)
                foreach (var key in new[] { "rng.global", "rng.batch_order", "rng.optimizer", "rng.metric_batches" })
                    using (var s = state.GetTensor(key)) GeneratorState.Check(g, s, $"state tensor '{key}'");
            optimizer.ImportState("optimizer.", state);
            using (no_grad())
                foreach (var (target, value) in weights) target.copy_(value);
        }
        finally
        {
            foreach (var (_, value) in weights) value.Dispose();
        }
        using (var g = Generator.Default) using (var s = state.GetTensor("rng.global")) GeneratorState.Restore(g, s, "state tensor 'rng.global'");
        using (var s = state.GetTensor("rng.batch_order")) batches.SetState(s);
        using (var s = state.GetTensor("rng.optimizer")) GeneratorState.Restore(generator, s, "state tensor 'rng.optimizer'");
        using (var s = state.GetTensor("rng.metric_batches")) sampler.SetState(s);
    }
}
