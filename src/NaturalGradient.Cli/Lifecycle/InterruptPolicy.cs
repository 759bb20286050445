namespace NaturalGradient.Cli.Commands;

/// <summary>
/// What a Ctrl+C (SIGINT) does to a running natgrad: the first stops training between steps (a checkpoint is written,
/// exit code 130); a later one, at least <see cref="Grace"/> after the first, ends the process at once. A SIGINT within
/// the grace period is the same interrupt delivered twice — `timeout -s INT` signals the process and then its process
/// group, 20 ms apart — and is absorbed, so that the run still writes its checkpoint.
/// </summary>
internal sealed class InterruptPolicy
{
    /// <summary>How long after the first interrupt a second one counts as the same.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    private readonly object _gate = new();
    private long? _first;

    /// <summary>
    /// True when the process should keep running (stop between steps: the first interrupt, or a repeat within
    /// <see cref="Grace"/>); false when it should end now.
    /// </summary>
    /// <param name="timestamp">The interrupt's time, <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>.</param>
    public bool KeepRunning(long timestamp)
    {
        lock (_gate)
        {
            if (_first is not { } first)
            {
                _first = timestamp;
                return true;
            }
            return System.Diagnostics.Stopwatch.GetElapsedTime(first, timestamp) < Grace;
        }
    }
}
