using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Training;

/// <summary>Everything a training method needs when the <see cref="OptimizerCatalog"/> creates it.</summary>
public sealed class OptimizerContext
{
    /// <summary>The model to train; invoke it with <c>Model.call(x)</c> so hooks fire.</summary>
    public required Module<Tensor, Tensor> Model { get; init; }

    /// <summary>The predictive distribution: loss (mean NLL) and output Fisher.</summary>
    public required ILikelihood Likelihood { get; init; }

    /// <summary>Validated hyper-parameters.</summary>
    public required OptimizerSettings Settings { get; init; }

    /// <summary>Seeded generator for the method's own sampling (Monte-Carlo targets, probes). Owned by the trainer.</summary>
    public required Generator Generator { get; init; }

    /// <summary>Optimisation steps per epoch.</summary>
    public required long StepsPerEpoch { get; init; }

    /// <summary>Total optimisation steps of the run.</summary>
    public long TotalSteps { get; init; }

    /// <summary>Training batch size.</summary>
    public int BatchSize { get; init; }

    /// <summary>
    /// Draws independent batches of the training set for <see cref="MetricSource.OtherBatch"/> and
    /// <see cref="MetricSource.Unlabeled"/>; null when the trainer offers none (e.g. in unit tests). Owned by the trainer.
    /// </summary>
    public MetricBatchSampler? MetricBatches { get; init; }

    /// <summary>Data-parallel training: the method takes its shard of each global batch and makes gradients,
    /// curvature statistics and the reported loss global through it; null = one process.</summary>
    public DataParallel? DataParallel { get; init; }

    /// <summary>Where the method reports one-line notes (e.g. choices it made); null = nowhere.</summary>
    public Action<string>? Log { get; init; }
}
