using NaturalGradient.Training.Experiments.Compare;
using NaturalGradient.Training.TensorBoard;

namespace NaturalGradient.Cli.Output;

/// <summary>Opens the <c>--tensorboard</c> event file before any work starts, reporting a problem as one line.</summary>
internal static class TensorBoardLog
{
    /// <summary>A writer for a new event file in <paramref name="dir"/>, or null when <paramref name="dir"/> is null.</summary>
    /// <exception cref="UsageException">"--tensorboard: cannot write to 'x': …".</exception>
    public static TensorBoardWriter? Open(string? dir)
    {
        if (dir is null) return null;
        try
        {
            return new TensorBoardWriter(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"--tensorboard: cannot write to '{dir}': {e.Message.Split('\n')[0].Trim()}");
        }
    }

    /// <summary>
    /// Checks, without creating anything, that <paramref name="dir"/> (if given) can be created and written
    /// (<see cref="Commands.RunFolder.ProbeWritable"/>). A bad folder is thus reported before any work starts, and a run
    /// refused later leaves no folder behind; the folder itself is created when the run starts (<see cref="TensorBoardOnStart"/>).
    /// </summary>
    /// <exception cref="UsageException">"--tensorboard: cannot write to 'x': …".</exception>
    public static void CheckFolder(string? dir)
    {
        if (dir is null) return;
        try
        {
            Commands.RunFolder.ProbeWritable(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"--tensorboard: cannot write to '{dir}': {e.Message.Split('\n')[0].Trim()}");
        }
    }

    /// <summary>
    /// Writes the epoch curve of a cached comparison run (its steps were not recorded in the cache):
    /// <c>epoch/train_loss</c>, <c>epoch/test_loss</c>, <c>epoch/test_accuracy</c>, <c>epoch/elapsed_s</c>.
    /// </summary>
    public static void WriteCurve(TensorBoardWriter writer, IEnumerable<EpochPoint> curve)
    {
        foreach (var p in curve)
        {
            var values = new List<(string, double)> { (TensorBoardProgress.Tags.TrainLoss, p.TrainLoss), (TensorBoardProgress.Tags.ElapsedSeconds, p.ElapsedSeconds) };
            if (double.IsFinite(p.TestLoss)) values.Add((TensorBoardProgress.Tags.TestLoss, p.TestLoss));
            if (p.TestAccuracy is { } acc) values.Add((TensorBoardProgress.Tags.TestAccuracy, acc));
            writer.AddScalars(p.Steps, values);
        }
    }

    /// <summary>
    /// The run's sub-folder name in a comparison: "&lt;method&gt;-lr&lt;lr&gt;-seed&lt;s&gt;-m&lt;batch&gt;"
    /// (TensorBoard lists sub-folders as runs).
    /// </summary>
    public static string RunName(string optimizer, double learningRate, long seed, int batchSize) =>
        FormattableString.Invariant($"{optimizer}-lr{learningRate:G6}-seed{seed}-m{batchSize}");
}

/// <summary>The <c>--tensorboard</c> writer of a training run, opened when the run starts (its first <see cref="Open"/>), closed on dispose.</summary>
internal sealed class TensorBoardOnStart(string dir) : IDisposable
{
    private TensorBoardWriter? _writer;

    /// <summary>The writer, created (with its folder and event file) on the first call.</summary>
    /// <exception cref="UsageException">"--tensorboard: cannot write to 'x': …".</exception>
    public TensorBoardWriter Open() => _writer ??= TensorBoardLog.Open(dir)!;

    public void Dispose() => _writer?.Dispose();
}
