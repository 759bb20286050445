using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace NaturalGradient.Cli.Commands;

/// <summary>How a watched child process ended.</summary>
internal enum ChildEnd
{
    /// <summary>It exited by itself (see the exit code).</summary>
    Exited,
    /// <summary>Killed: its resident memory passed the budget.</summary>
    OverMemory,
    /// <summary>Killed: it ran past the run limit (counted from the start marker).</summary>
    OverTime,
    /// <summary>Killed: it did not print the start marker within the start-up limit.</summary>
    NoStart,
}

/// <summary>The budgets a child process is held to.</summary>
internal sealed record ChildLimits
{
    /// <summary>Resident set size (MiB) above which the child is killed; default none.</summary>
    public double MemoryBudgetMb { get; init; } = double.PositiveInfinity;

    /// <summary>Wall-clock time after the start marker (or after launch, without a marker) before the child is killed; default none.</summary>
    public TimeSpan RunLimit { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>A stdout line that says "set-up done, the budgeted work starts now" (start-up time is not charged to <see cref="RunLimit"/>).</summary>
    public string? StartMarker { get; init; }

    /// <summary>Time allowed before the start marker appears; default 60 s.</summary>
    public TimeSpan StartupLimit { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How often the child's resident memory and the clock are checked; default 20 ms.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(20);
}

/// <summary>What a watched child did.</summary>
/// <param name="End">How it ended.</param>
/// <param name="ExitCode">Its exit code when it exited by itself, else null.</param>
/// <param name="Stdout">Its standard output, line by line.</param>
/// <param name="Stderr">Its standard error, line by line.</param>
/// <param name="MaxRssMb">The largest resident set size seen while polling (MiB).</param>
/// <param name="Elapsed">Wall time from launch to exit or kill.</param>
/// <param name="SinceMarker">Wall time from the start marker to exit or kill (null without one).</param>
internal sealed record ChildResult(ChildEnd End, int? ExitCode, IReadOnlyList<string> Stdout, IReadOnlyList<string> Stderr,
    double MaxRssMb, TimeSpan Elapsed, TimeSpan? SinceMarker);

/// <summary>
/// Runs a child process and watches it: its resident memory (VmRSS from /proc/&lt;pid&gt;/status) and the clock are
/// polled, and the child — only the process this runner started, and its own children — is killed when it passes
/// the memory budget or the time limit. Output is captured line by line.
/// </summary>
internal static class ProcessRunner
{
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was triggered (the child is killed first).</exception>
    public static ChildResult Run(string fileName, IEnumerable<string> arguments, ChildLimits limits, CancellationToken cancellation = default)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, CreateNoWindow = true,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);

        var stdout = new ConcurrentQueue<string>();
        var stderr = new ConcurrentQueue<string>();
        var watch = new Stopwatch();
        long markerAtMs = -1;
        using var child = new Process { StartInfo = start };
        child.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            stdout.Enqueue(e.Data);
            if (limits.StartMarker is not null && e.Data.Trim() == limits.StartMarker)
                Interlocked.CompareExchange(ref markerAtMs, watch.ElapsedMilliseconds, -1);
        };
        child.ErrorDataReceived += (_, e) => { if (e.Data is not null) stderr.Enqueue(e.Data); };

        watch.Start();
        child.Start();
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();

        double maxRss = 0;
        var end = ChildEnd.Exited;
        int poll = Math.Max(1, (int)limits.PollInterval.TotalMilliseconds);
        while (!child.WaitForExit(poll))
        {
            if (cancellation.IsCancellationRequested)
            {
                Kill(child);
                cancellation.ThrowIfCancellationRequested();
            }
            maxRss = Math.Max(maxRss, ResidentMb(child));
            if (maxRss > limits.MemoryBudgetMb) { end = ChildEnd.OverMemory; break; }
            long marker = Interlocked.Read(ref markerAtMs);
            if (limits.StartMarker is null || marker >= 0)
            {
                var running = watch.Elapsed - TimeSpan.FromMilliseconds(Math.Max(0, marker));
                if (limits.RunLimit != Timeout.InfiniteTimeSpan && running > limits.RunLimit) { end = ChildEnd.OverTime; break; }
            }
            else if (watch.Elapsed > limits.StartupLimit) { end = ChildEnd.NoStart; break; }
        }
        if (end != ChildEnd.Exited) Kill(child);
        child.WaitForExit(); // also waits until the output readers have seen the end of both streams
        watch.Stop();

        long markedAt = Interlocked.Read(ref markerAtMs);
        TimeSpan? sinceMarker = limits.StartMarker is null ? null
            : markedAt < 0 ? null : watch.Elapsed - TimeSpan.FromMilliseconds(markedAt);
        return new ChildResult(end, end == ChildEnd.Exited ? child.ExitCode : null, stdout.ToList(), stderr.ToList(), maxRss, watch.Elapsed, sinceMarker);
    }

    private static void Kill(Process child)
    {
        try { child.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { } // it has exited meanwhile
    }

    /// <summary>Current resident set size of the child in MiB (VmRSS on Linux), 0 when it cannot be read (e.g. it just exited).</summary>
    private static double ResidentMb(Process child)
    {
        try
        {
            if (OperatingSystem.IsLinux())
            {
                foreach (var line in File.ReadLines($"/proc/{child.Id}/status"))
                    if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                        return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
                return 0;
            }
            child.Refresh();
            return child.WorkingSet64 / (1024.0 * 1024.0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or InvalidOperationException)
        {
            return 0;
        }
    }
}
