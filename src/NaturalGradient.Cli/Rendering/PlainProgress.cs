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
    private long? _stepsBefore;   // steps done before this process (a resumed run starts past 0)

    public void OnStart(TrainingPlan plan)
    {
        _plan = plan;
        _clock.Start();
        output.WriteLine(ProgressText.Header(plan, model, data));
        foreach (var line in plan.CoverageLines) output.WriteLine(line);
    }

    public void OnStep(StepMetrics step)
    {
        _stepsBefore ??= step.Step - 1;
        _steps = step.Step;
        double now = _clock.Elapsed.TotalSeconds;
        if (now - _lastLine < HeartbeatSeconds) return;
        _lastLine = now;
        output.WriteLine(ProgressText.Step(step, _plan!, Rate(now)));
    }

    /// <summary>Steps per second taken by this process (not counting the steps a resumed run had done before).</summary>
    private double Rate(double seconds) => (_steps - (_stepsBefore ?? _steps)) / Math.Max(seconds, 1e-9);

    public void OnNote(string note) => output.WriteLine(note);

    public void OnEpoch(EpochMetrics epoch)
    {
        double now = _clock.Elapsed.TotalSeconds;
        _lastLine = now;
        output.WriteLine(ProgressText.Epoch(epoch, _plan!, _steps, Rate(now)));
    }
}
