using NaturalGradient.Cli.Output;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Appends each step to steps.csv and each evaluation to epochs.csv as they happen, flushing every row, so a killed
/// run keeps what it measured and <c>tail -f</c> shows a run live. Passes every event on to <paramref name="inner"/>.
/// A resumed run first rewrites both files with the checkpoint's rows (dropping rows recorded after it).
/// </summary>
internal sealed class MetricsStream : ITrainingProgress, IDisposable
{
    private readonly ITrainingProgress? _inner;
    private readonly StreamWriter _steps, _epochs;

    public MetricsStream(string dir, ITrainingProgress? inner, IReadOnlyList<StepMetrics> steps, IReadOnlyList<EpochMetrics> epochs)
    {
        _inner = inner;
        AtomicFile.Write(Path.Combine(dir, RunFiles.Steps), w => CsvTables.WriteSteps(w, steps));
        AtomicFile.Write(Path.Combine(dir, RunFiles.Epochs), w => CsvTables.WriteEpochs(w, epochs));
        _steps = Append(Path.Combine(dir, RunFiles.Steps));
        _epochs = Append(Path.Combine(dir, RunFiles.Epochs));
    }

    private static StreamWriter Append(string path) =>
        new(path, append: true, new System.Text.UTF8Encoding(false)) { NewLine = "\n", AutoFlush = false };

    public void OnStart(TrainingPlan plan) => _inner?.OnStart(plan);

    public void OnStep(StepMetrics step)
    {
        _steps.WriteLine(CsvTables.StepRow(step));
        _steps.Flush();
        _inner?.OnStep(step);
    }

    public void OnEpoch(EpochMetrics epoch)
    {
        _epochs.WriteLine(CsvTables.EpochRow(epoch));
        _epochs.Flush();
        _inner?.OnEpoch(epoch);
    }

    public void Dispose()
    {
        _steps.Dispose();
        _epochs.Dispose();
    }
}
