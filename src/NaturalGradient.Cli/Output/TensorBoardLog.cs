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

    /// <summary>Creates <paramref name="dir"/> (if given) so that a bad folder is reported before any run starts.</summary>
    /// <exception cref="UsageException">"--tensorboard: cannot write to 'x': …".</exception>
    public static void EnsureFolder(string? dir)
    {
        if (dir is null) return;
        try
        {
            Directory.CreateDirectory(dir);
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
