namespace NaturalGradient.Training;

/// <summary>Receives a run's events as they happen (e.g. to draw a progress bar). Every method is optional.</summary>
/// <remarks>Called on the training thread, outside the per-step dispose scope; keep the work small.</remarks>
public interface ITrainingProgress
{
    /// <summary>
    /// Once the run is certain to start: after every check of <see cref="Trainer.Run"/> that can refuse it (the model
    /// against the data, the method's construction, a resume checkpoint), before the first evaluation. A refused run
    /// never calls it, so an observer may prepare its output here (natgrad writes its run folder here).
    /// </summary>
    void OnStart(TrainingPlan plan) { }

    /// <summary>After each step.</summary>
    void OnStep(StepMetrics step) { }

    /// <summary>After each evaluation (epoch 0 = untrained model).</summary>
    void OnEpoch(EpochMetrics epoch) { }

    /// <summary>A one-line message from the training method (e.g. the per-layer structure <c>auto</c> chose).</summary>
    void OnNote(string note) { }
}
