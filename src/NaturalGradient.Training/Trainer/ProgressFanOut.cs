namespace NaturalGradient.Training;

/// <summary>Forwards a run's events to several observers, in order (e.g. a progress display and a TensorBoard log).</summary>
public sealed class ProgressFanOut(params ITrainingProgress?[] observers) : ITrainingProgress
{
    private readonly ITrainingProgress[] _observers = observers.Where(o => o is not null).ToArray()!;

    public void OnStart(TrainingPlan plan)
    {
        foreach (var o in _observers) o.OnStart(plan);
    }

    public void OnStep(StepMetrics step)
    {
        foreach (var o in _observers) o.OnStep(step);
    }

    public void OnEpoch(EpochMetrics epoch)
    {
        foreach (var o in _observers) o.OnEpoch(epoch);
    }

    public void OnNote(string note)
    {
        foreach (var o in _observers) o.OnNote(note);
    }
}
