using System.Diagnostics;
using System.Globalization;

namespace NaturalGradient.Training.TensorBoard;

/// <summary>
/// Writes scalar series to a TensorBoard event file <c>events.out.tfevents.&lt;unix time&gt;.&lt;host&gt;.&lt;pid&gt;.&lt;n&gt;</c>
/// in a log folder (as <c>torch.utils.tensorboard.SummaryWriter</c> does): TFRecord-framed <c>Event</c> protocol
/// buffers, the first one carrying the file version. View with <c>tensorboard --logdir DIR</c>.
/// </summary>
/// <remarks>
/// Values are stored as float32 (<c>simple_value</c>), wall times in seconds since the Unix epoch. The file is
/// flushed by <see cref="Flush"/>, at least every <see cref="FlushInterval"/> while writing, and on
/// <see cref="Dispose"/>, so a running TensorBoard sees the series grow.
/// </remarks>
public sealed class TensorBoardWriter : IDisposable
{
    private static int _counter;
    private readonly FileStream _stream;
    private long _lastFlush = Stopwatch.GetTimestamp();

    /// <summary>Creates <paramref name="logDir"/> if needed and a new event file in it.</summary>
    /// <exception cref="IOException">The folder or the file cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">No permission to write there.</exception>
    public TensorBoardWriter(string logDir)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(logDir);
        Directory.CreateDirectory(logDir);
        LogDir = logDir;
        string name = string.Create(CultureInfo.InvariantCulture,
            $"events.out.tfevents.{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{Environment.MachineName}.{Environment.ProcessId}.{Interlocked.Increment(ref _counter)}");
        FilePath = Path.Combine(logDir, name);
        _stream = new FileStream(FilePath, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 1 << 16);
        TfRecord.Write(_stream, EventEncoder.FileVersion(Now()));
        _stream.Flush();
    }

    /// <summary>The log folder.</summary>
    public string LogDir { get; }

    /// <summary>The event file being written.</summary>
    public string FilePath { get; }

    /// <summary>Longest time buffered values wait before they reach the file; default 2 s.</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Adds one value of the series <paramref name="tag"/> at <paramref name="step"/>.</summary>
    public void AddScalar(string tag, double value, long step) => AddScalars(step, new[] { (tag, value) });

    /// <summary>
    /// Adds one value per tag at <paramref name="step"/>, as one event. Non-finite values are written as they are
    /// (TensorBoard shows NaN and ±∞).
    /// </summary>
    public void AddScalars(long step, IReadOnlyList<(string Tag, double Value)> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) return;
        var floats = values.Select(v => (v.Tag, (float)v.Value)).ToList();
        TfRecord.Write(_stream, EventEncoder.Scalars(Now(), step, floats));
        if (Stopwatch.GetElapsedTime(_lastFlush) >= FlushInterval) Flush();
    }

    /// <summary>Writes buffered events to the file.</summary>
    public void Flush()
    {
        _stream.Flush();
        _lastFlush = Stopwatch.GetTimestamp();
    }

    public void Dispose() => _stream.Dispose();

    private static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
}
