using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Training;

/// <summary>
/// When the <see cref="Trainer"/> takes checkpoints and where they go: every <see cref="EverySteps"/> steps or
/// every <see cref="EveryEpochs"/> epochs, at the end of the run, and when the run is cancelled between steps.
/// </summary>
public sealed record CheckpointPlan
{
    /// <summary>A checkpoint after every this many steps (≥ 1), or null.</summary>
    public long? EverySteps { get; init; }

    /// <summary>A checkpoint after every this many epochs (≥ 1, after the epoch's evaluation), or null.</summary>
    public int? EveryEpochs { get; init; }

    /// <summary>
    /// Receives each checkpoint with the model it was taken from (e.g. to write the checkpoint file and the model
    /// file). The checkpoint is disposed by the trainer after the call; the model must not be changed.
    /// </summary>
    public required Action<TrainingCheckpoint, Module<Tensor, Tensor>> Write { get; init; }

    /// <summary>Checks the periods.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A period below 1.</exception>
    public void Validate()
    {
        if (EverySteps is < 1) throw new ArgumentOutOfRangeException(nameof(EverySteps), EverySteps, $"{nameof(EverySteps)} must be ≥ 1, got {EverySteps}");
        if (EveryEpochs is < 1) throw new ArgumentOutOfRangeException(nameof(EveryEpochs), EveryEpochs, $"{nameof(EveryEpochs)} must be ≥ 1, got {EveryEpochs}");
    }
}

/// <summary>Training stopped between steps because it was cancelled; <see cref="Partial"/> holds what was recorded.</summary>
public sealed class TrainingInterruptedException : OperationCanceledException
{
    /// <param name="step">Steps completed.</param>
    /// <param name="partial">Steps and epochs recorded until then.</param>
    /// <param name="checkpointWritten">Whether a checkpoint of this point was handed to the <see cref="CheckpointPlan"/>.</param>
    public TrainingInterruptedException(long step, TrainingResult partial, bool checkpointWritten)
        : base($"training interrupted after step {step}")
    {
        Step = step;
        Partial = partial;
        CheckpointWritten = checkpointWritten;
    }

    /// <summary>Steps completed.</summary>
    public long Step { get; }

    /// <summary>What was recorded until the interruption.</summary>
    public TrainingResult Partial { get; }

    /// <summary>True when a checkpoint of this point was written.</summary>
    public bool CheckpointWritten { get; }
}
