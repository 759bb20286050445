using NaturalGradient.Cli.Output;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Appends each step to steps.csv and each evaluation to epochs.csv as they happen, flushing every row, so a killed
/// run keeps what it measured and <c>tail -f</c> shows a run live. Passes every event on to <paramref name="inner"/>.
/// Nothing is written before <see cref="OnStart"/>, which the trainer calls once every check that can refuse the run
/// has passed: it first runs <paramref name="onStart"/> (the caller's own preparation of the folder), then writes both
/// files afresh with the rows given (a resumed run: the checkpoint's rows, dropping rows recorded after it; each file
/// replaced atomically) and opens them for appending.
/// </summary>
internal sealed class MetricsStream : ITrainingProgress, IDisposable
{
    private readonly string _dir;
    private readonly ITrainingProgress? _inner;
    private readonly IReadOnlyList<StepMetrics> _initialSteps;
    private readonly IReadOnlyList<EpochMetrics> _initialEpochs;
    private readonly Action? _onStart;
    private StreamWriter? _steps, _epochs;

    public MetricsStream(string dir, ITrainingProgress? inner, IReadOnlyList<StepMetrics> steps, IReadOnlyList<EpochMetrics> epochs, Action? onStart = null)
    {
        _dir = dir;
        _inner = inner;
        _initialSteps = steps;
        _initialEpochs = epochs;
        _onStart = onStart;
    }

    private static StreamWriter Append(string path) =>
        new(path, append: true, new System.Text.UTF8Encoding(false)) { NewLine = "\n", AutoFlush = false };

    public void OnStart(TrainingPlan plan)
    {
        if (_steps is null)
        {
            _onStart?.Invoke();
            AtomicFile.Write(Path.Combine(_dir, RunFiles.Steps), w => CsvTables.WriteSteps(w, _initialSteps));
            AtomicFile.Write(Path.Combine(_dir, RunFiles.Epochs), w => CsvTables.WriteEpochs(w, _initialEpochs));
            _steps = Append(Path.Combine(_dir, RunFiles.Steps));
            _epochs = Append(Path.Combine(_dir, RunFiles.Epochs));
        }
        _inner?.OnStart(plan);
    }

    public void OnStep(StepMetrics step)
    {
        var steps = _steps ?? throw new InvalidOperationException("OnStep before OnStart");
        steps.WriteLine(CsvTables.StepRow(step));
        steps.Flush();
        _inner?.OnStep(step);
    }

    public void OnEpoch(EpochMetrics epoch)
    {
        var epochs = _epochs ?? throw new InvalidOperationException("OnEpoch before OnStart");
        epochs.WriteLine(CsvTables.EpochRow(epoch));
        epochs.Flush();
        _inner?.OnEpoch(epoch);
    }

    public void Dispose()
    {
        _steps?.Dispose();
        _epochs?.Dispose();
    }
}
