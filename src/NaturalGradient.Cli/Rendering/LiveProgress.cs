using System.Diagnostics;
using NaturalGradient.Training;
using Spectre.Console;

namespace NaturalGradient.Cli.Rendering;

/// <summary>A Spectre.Console progress bar over all steps, its caption showing epoch, step, loss and steps/s.</summary>
internal sealed class LiveProgress : ITrainingProgress
{
    private readonly IAnsiConsole _console;
    private readonly ProgressContext _context;
    private readonly string _model, _data;
    private readonly Stopwatch _clock = new();
    private ProgressTask? _task;
    private TrainingPlan? _plan;
    private long? _stepsBefore;

    private LiveProgress(IAnsiConsole console, ProgressContext context, string model, string data)
    {
        _console = console;
        _context = context;
        _model = model;
        _data = data;
    }

    /// <summary>Runs <paramref name="train"/> under a live progress display on <paramref name="console"/>.</summary>
    public static TrainingResult Run(IAnsiConsole console, string model, string data, Func<ITrainingProgress, TrainingResult> train) =>
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 16 }, new PercentageColumn(),
                new RemainingTimeColumn())
            .Start(ctx => train(new LiveProgress(console, ctx, model, data)));

    public void OnStart(TrainingPlan plan)
    {
        _plan = plan;
        _clock.Start();
        _console.MarkupLine("[grey]" + Markup.Escape(ProgressText.Header(plan, _model, _data)) + "[/]");
        foreach (var line in plan.CoverageLines) _console.MarkupLine("[grey]" + Markup.Escape(line) + "[/]");
        _task = _context.AddTask("starting", maxValue: Math.Max(1, plan.TotalSteps));
    }

    public void OnStep(StepMetrics step)
    {
        if (_task is null || _plan is null) return;
        _task.Value = step.Step;
        _stepsBefore ??= step.Step - 1;   // a resumed run starts past 0: its rate counts this process's steps
        double rate = (step.Step - _stepsBefore.Value) / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
        _task.Description = Markup.Escape(FormattableString.Invariant(
            $"epoch {step.Epoch}/{_plan.Epochs}  step {step.Step}/{_plan.TotalSteps}  loss {step.Loss:G4}  {rate:F0}/s"));
    }

    public void OnEpoch(EpochMetrics epoch)
    {
        // Keep a line per epoch above the bar only for long epochs, so short runs do not scroll.
        if (_plan is { StepsPerEpoch: >= 100 })
            _console.MarkupLine(Markup.Escape(ProgressText.Epoch(epoch, _plan, (long)(_task?.Value ?? 0),
                ((_task?.Value ?? 0) - (_stepsBefore ?? 0)) / Math.Max(_clock.Elapsed.TotalSeconds, 1e-9))));
    }
}
