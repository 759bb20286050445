namespace NaturalGradient.Training.Experiments.Compare;

/// <summary>One run of a comparison: a method at one learning rate, seed and batch size.</summary>
public sealed record CompareRunSpec(string Optimizer, double LearningRate, long Seed, int BatchSize);

/// <summary>Final state of a run: finished, diverged, or refused (the method cannot handle the model).</summary>
public enum RunStatus { Finished, Diverged, Refused }

/// <summary>One evaluated epoch of a run (epoch 0 = before training).</summary>
public sealed record EpochPoint(int Epoch, long Steps, double ElapsedSeconds, double TrainLoss, double TestLoss, double? TestAccuracy);

/// <summary>What a finished (or failed) run produced: the numbers a comparison needs, cached as result.json.</summary>
public sealed record CompareRunResult
{
    public required CompareRunSpec Spec { get; init; }
    public required RunStatus Status { get; init; }
    public string? Message { get; init; }
    public double FinalTrainLoss { get; init; } = double.NaN;
    public double FinalTestLoss { get; init; } = double.NaN;
    public double? FinalTrainAccuracy { get; init; }
    public double? FinalTestAccuracy { get; init; }
    public double WallSeconds { get; init; }
    public long Steps { get; init; }
    /// <summary>Median optimisation step time in ms (after the first 5 steps).</summary>
    public double MedianStepMs { get; init; } = double.NaN;
    public IReadOnlyList<EpochPoint> Curve { get; init; } = Array.Empty<EpochPoint>();
}
