using TorchSharp;

namespace NaturalGradient.Training;

/// <summary>How the <see cref="Trainer"/> runs: epochs, batches, seed, precision, threads.</summary>
public sealed record TrainerOptions
{
    /// <summary>Passes over the training set, ≥ 1; default 10.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Examples per optimisation step, ≥ 1; default 128. The last batch of an epoch may be smaller.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>
    /// The one seed of the run; default 0. It seeds torch's global generator before the model is built, the batch
    /// order, the optimiser's generator and the metric batch sampler (each from its own derived stream).
    /// </summary>
    public long Seed { get; init; }

    /// <summary>Parameter and feature dtype: <c>Float32</c> (default) or <c>Float64</c>.</summary>
    public torch.ScalarType Dtype { get; init; } = torch.ScalarType.Float32;

    /// <summary>Intra-op threads for torch (<c>torch.set_num_threads</c>), ≥ 1; null (default) = leave torch's setting.</summary>
    public int? Threads { get; init; }

    /// <summary>Examples per forward pass in the full-set evaluations, ≥ 1; default 1024.</summary>
    public int EvalBatchSize { get; init; } = 1024;

    /// <summary>Sample the resident set size every this many steps (also at steps 1, 100 and the last), ≥ 1; default 50.</summary>
    public int RssSampleInterval { get; init; } = 50;

    /// <summary>
    /// Divergence test: training stops with <see cref="TrainingDivergedException"/> when a batch loss exceeds this
    /// multiple of the untrained model's training-set loss (epoch 0), as well as on any non-finite loss; default 10⁴;
    /// null = only non-finite losses stop the run.
    /// </summary>
    public double? DivergenceFactor { get; init; } = 1e4;

    /// <summary>Checks every value.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the property and the value.</exception>
    public void Validate()
    {
        OptionGuard.AtLeast(Epochs, 1, nameof(Epochs));
        OptionGuard.AtLeast(BatchSize, 1, nameof(BatchSize));
        if (Dtype is not (torch.ScalarType.Float32 or torch.ScalarType.Float64))
            throw new ArgumentOutOfRangeException(nameof(Dtype), Dtype, $"{nameof(Dtype)} must be Float32 or Float64, got {Dtype}");
        if (Threads is { } t)
        {
            OptionGuard.AtLeast(t, 1, nameof(Threads));
            if (t > Environment.ProcessorCount)
                throw new ArgumentOutOfRangeException(nameof(Threads), t,
                    $"{nameof(Threads)} must be at most the {Environment.ProcessorCount} logical cores of this machine, got {t}");
        }
        if (DivergenceFactor is { } f && !(f > 1 && double.IsFinite(f)))
            throw new ArgumentOutOfRangeException(nameof(DivergenceFactor), f, $"{nameof(DivergenceFactor)} must be a finite number > 1, got {f}");
        OptionGuard.AtLeast(EvalBatchSize, 1, nameof(EvalBatchSize));
        OptionGuard.AtLeast(RssSampleInterval, 1, nameof(RssSampleInterval));
    }

    /// <summary>Every value, sorted by name.</summary>
    public override string ToString() => OptionGuard.Describe(this);
}
