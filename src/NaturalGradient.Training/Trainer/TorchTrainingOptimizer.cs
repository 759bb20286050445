using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Training;

/// <summary>
/// Adapts a <c>torch.optim</c> optimizer to <see cref="ITrainingOptimizer"/>: zero_grad, forward through
/// <c>model.call</c>, mean-NLL loss, backward, <c>optimizer.step()</c>.
/// </summary>
public sealed class TorchTrainingOptimizer : ITrainingOptimizer
{
    private readonly Module<Tensor, Tensor> _model;
    private readonly ILikelihood _likelihood;
    private readonly optim.Optimizer _optimizer;
    private readonly DataParallel? _parallel;

    /// <param name="name">Catalog name.</param>
    /// <param name="model">The model whose parameters <paramref name="optimizer"/> updates.</param>
    /// <param name="likelihood">Loss = <see cref="ILikelihood.Loss"/>.</param>
    /// <param name="optimizer">The torch optimizer; owned (disposed with this object).</param>
    /// <param name="parallel">Data-parallel training: gradients and the loss are made those of the global batch; null = one process.</param>
    public TorchTrainingOptimizer(string name, Module<Tensor, Tensor> model, ILikelihood likelihood, optim.Optimizer optimizer, DataParallel? parallel = null)
    {
        _parallel = parallel;
        Name = name;
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _likelihood = likelihood ?? throw new ArgumentNullException(nameof(likelihood));
        _optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
    }

    /// <summary>torch.optim.SGD with <see cref="OptimizerSettings.Momentum"/> and <see cref="OptimizerSettings.WeightDecay"/>.</summary>
    public static ITrainingOptimizer Sgd(OptimizerContext c) => new TorchTrainingOptimizer("sgd", c.Model, c.Likelihood,
        optim.SGD(c.Model.parameters(), c.Settings.LearningRate, momentum: c.Settings.Momentum, weight_decay: c.Settings.WeightDecay), c.DataParallel);

    /// <summary>torch.optim.Adam with <see cref="OptimizerSettings.Beta1"/>, <see cref="OptimizerSettings.Beta2"/>,
    /// <see cref="OptimizerSettings.Eps"/> and <see cref="OptimizerSettings.WeightDecay"/>.</summary>
    public static ITrainingOptimizer Adam(OptimizerContext c) => new TorchTrainingOptimizer("adam", c.Model, c.Likelihood,
        optim.Adam(c.Model.parameters(), c.Settings.LearningRate, c.Settings.Beta1, c.Settings.Beta2, c.Settings.Eps, c.Settings.WeightDecay), c.DataParallel);

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public double LearningRate => _optimizer.ParamGroups.First().LearningRate;

    /// <inheritdoc/>
    public void SetLearningRate(double learningRate)
    {
        OptionGuard.Positive(learningRate, nameof(learningRate));
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = learningRate;
    }

    /// <inheritdoc/>
    /// <remarks>A non-finite loss is reported without updating the weights (<see cref="StepResult.Skipped"/>).</remarks>
    public StepResult Step(Tensor x, Tensor y)
    {
        _optimizer.zero_grad();
        var loss = _likelihood.Loss(_model.call(x), y);
        double value = loss.ToDouble();
        if (_parallel is not null)
        {
            // Every rank decides on the global loss, so that all of them skip or all of them step.
            value = _parallel.ReduceLoss(value);
            if (!double.IsFinite(value)) return new StepResult(value, Skipped: true);
            loss.backward();
            _parallel.ReduceGradients(_model.parameters().Where(p => p.grad is not null).Select(p => p.grad!).ToList());
            _optimizer.step();
            return new StepResult(value);
        }
        if (!double.IsFinite(value)) return new StepResult(value, Skipped: true);
        loss.backward();
        _optimizer.step();
        return new StepResult(value);
    }

    /// <inheritdoc/>
    /// <remarks>The torch optimiser's own <c>save_state_dict</c> form (options and per-parameter state such as
    /// momentum buffers and Adam moments) is kept as a byte tensor under <c>{prefix}torch</c>.</remarks>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) Helper.save_state_dict(w);
        state.Texts[prefix + "method"] = Name;
        using var bytes = tensor(stream.ToArray(), dtype: ScalarType.Byte);
        state.SetTensor(prefix + "torch", bytes);
    }

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        var method = state.GetText(prefix + "method");
        if (method != Name) throw new InvalidDataException($"the state is for method '{method}', not '{Name}'");
        using var bytes = state.GetTensor(prefix + "torch");
        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes.bytes.ToArray()), System.Text.Encoding.UTF8);
            Helper.load_state_dict(reader);
        }
        catch (Exception e) when (e is ArgumentException or EndOfStreamException or IOException)
        {
            throw new InvalidDataException($"the {Name} optimiser state does not fit this model ({e.Message.Split('\n')[0]})");
        }
    }

    private TorchSharp.Modules.OptimizerHelper Helper => _optimizer as TorchSharp.Modules.OptimizerHelper
        ?? throw new NotSupportedException($"the torch optimiser {_optimizer.GetType().Name} cannot save its state");

    /// <inheritdoc/>
    public void Dispose() => _optimizer.Dispose();
}
