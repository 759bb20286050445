using NaturalGradient.Training.Data;
using TorchSharp;

namespace NaturalGradient.Training;

/// <summary>One optimisation step as recorded by the trainer (a row of steps.csv).</summary>
/// <param name="Step">1-based global step number.</param>
/// <param name="Epoch">1-based epoch the step belongs to.</param>
/// <param name="Loss">Mean NLL of the step's batch before the update.</param>
/// <param name="LearningRate">Learning rate used.</param>
/// <param name="Damping">Damping used, if the method has one.</param>
/// <param name="Rho">Levenberg–Marquardt reduction ratio, if computed.</param>
/// <param name="PredictedKl">Predicted KL of the update, if computed.</param>
/// <param name="SolverIterations">Iterative-solver iterations, if any.</param>
/// <param name="StepMs">Wall time of the optimiser's step in milliseconds.</param>
/// <param name="RssMb">Resident set size in MiB after the step, when sampled (else null).</param>
/// <param name="Skipped">The method did not apply the update.</param>
/// <param name="CurvatureMs">Part of <paramref name="StepMs"/> spent in curvature work, if the method reports it.</param>
public sealed record StepMetrics(long Step, int Epoch, double Loss, double LearningRate, double? Damping, double? Rho,
    double? PredictedKl, int? SolverIterations, double StepMs, double? RssMb, bool Skipped, double? CurvatureMs = null)
{
    /// <summary>Part of <see cref="StepMs"/> spent inside MPI collectives (data-parallel runs; waiting for the other ranks included), else null.</summary>
    public double? CommunicationMs { get; init; }

    /// <summary>Per-layer approximation diagnostics of this step (a row each in approximation.csv), or null.</summary>
    public IReadOnlyList<NaturalGradient.Diagnostics.LayerApproximation>? Approximation { get; init; }

    /// <summary>
    /// Iterations the solver needed without its preconditioner on the same system, to the same relative residual, on the
    /// steps that measure it (Hessian-free with a preconditioner and <c>DiagnosticsEvery</c>), or null.
    /// </summary>
    public int? SolverIterationsUnpreconditioned { get; init; }
}

/// <summary>Full-set evaluation after an epoch (a row of epochs.csv). Epoch 0 is the untrained model.</summary>
/// <param name="Epoch">Completed epochs (0 = before training).</param>
/// <param name="TrainLoss">Mean NLL over the whole training set.</param>
/// <param name="TestLoss">Mean NLL over the test set (NaN when it is empty).</param>
/// <param name="TrainAccuracy">Training accuracy (classification), else null.</param>
/// <param name="TestAccuracy">Test accuracy (classification), else null.</param>
/// <param name="LearningRate">Learning rate of the epoch's steps (epoch 0: the base rate).</param>
/// <param name="ElapsedSeconds">Wall time since training started, evaluations included.</param>
public sealed record EpochMetrics(int Epoch, double TrainLoss, double TestLoss, double? TrainAccuracy, double? TestAccuracy,
    double LearningRate, double ElapsedSeconds);

/// <summary>What a run is about to do; given to <see cref="ITrainingProgress.OnStart"/>.</summary>
public sealed record TrainingPlan(string Optimizer, TaskKind Task, int Epochs, long StepsPerEpoch, long TotalSteps,
    long ParameterCount, long TrainCount, long TestCount, int Threads, torch.ScalarType Dtype)
{
    /// <summary>The natural-gradient registration report's summary (which tensors get which curvature); empty for SGD/Adam.</summary>
    public IReadOnlyList<string> CoverageLines { get; init; } = Array.Empty<string>();
}

/// <summary>Everything a run recorded.</summary>
/// <param name="Plan">The run's plan.</param>
/// <param name="Steps">Every step, in order.</param>
/// <param name="Epochs">Epoch 0 (untrained) and every completed epoch.</param>
/// <param name="WallSeconds">Wall time of the training loop, evaluations included.</param>
/// <param name="RssAtStep100Mb">Resident set size after step 100 (null for shorter runs).</param>
/// <param name="RssEndMb">Resident set size after the last step.</param>
public sealed record TrainingResult(TrainingPlan Plan, IReadOnlyList<StepMetrics> Steps, IReadOnlyList<EpochMetrics> Epochs,
    double WallSeconds, double? RssAtStep100Mb, double? RssEndMb)
{
    /// <summary>Growth of the resident set from step 100 to the end in percent, or null.</summary>
    public double? RssGrowthPercent => RssAtStep100Mb is > 0 && RssEndMb is { } end ? (end / RssAtStep100Mb.Value - 1) * 100 : null;

    /// <summary>The last evaluation (after the last completed epoch).</summary>
    public EpochMetrics Final => Epochs[^1];

    /// <summary>Steps per second over the run (evaluations included).</summary>
    public double StepsPerSecond => WallSeconds > 0 ? Steps.Count / WallSeconds : 0;
}
