using System.Diagnostics;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Rendering;

/// <summary>
/// Progress for logs and CI: a header, one line per evaluation, and a step line at most every
/// <see cref="HeartbeatSeconds"/> seconds within long epochs.
/// </summary>
internal sealed class PlainProgress(TextWriter output, string model, string data) : ITrainingProgress
{
    /// <summary>Seconds between step lines inside an epoch.</summary>
    public const double HeartbeatSeconds = 10;

    private readonly Stopwatch _clock = new();
    private TrainingPlan? _plan;
    private double _lastLine;
    private long _steps;

    public void OnStart(TrainingPlan plan)
    {
        _plan = plan;
        _clock.Start();
        output.WriteLine(ProgressText.Header(plan, model, data));
    }

    public void OnStep(StepMetrics step)
    {
        _steps = step.Step;
        double now = _clock.Elapsed.TotalSeconds;
        if (now - _lastLine < HeartbeatSeconds) return;
        _lastLine = now;
        output.WriteLine(ProgressText.Step(step, _plan!, _steps / Math.Max(now, 1e-9)));
    }

    public void OnNote(string note) => output.WriteLine(note);

    public void OnEpoch(EpochMetrics epoch)
    {
        double now = _clock.Elapsed.TotalSeconds;
        _lastLine = now;
        output.WriteLine(ProgressText.Epoch(epoch, _plan!, _steps, _steps / Math.Max(now, 1e-9)));
    }
}
