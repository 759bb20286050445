using System.Diagnostics;
using System.Text.Json;
using NaturalGradient.Experiments.Scale;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Runs <c>natgrad scale-point</c> in a child process and watches it: killed past the wall-clock limit or when its
/// resident memory (polled from /proc every 50 ms) passes the memory budget.
/// </summary>
internal static class PointProcess
{
    public static PointMeasurement Measure(string method, ModelSize size, SweepKind sweep, IReadOnlyList<string> extraArgs,
        TimeSpan wallLimit, double memoryBudgetMb)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var self = Environment.ProcessPath!;
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(Program).Assembly.Location);
        start.FileName = self;
        foreach (var a in new[] { "scale-point", "--method", method, "--depth", size.Depth.ToString(), "--width", size.Width.ToString(),
                     "--inputs", size.Inputs.ToString() }.Concat(extraArgs))
            start.ArgumentList.Add(a);
        PointMeasurement Fail(PointStatus status, string message) =>
            new() { Method = method, Sweep = sweep, Size = size, Status = status, Message = message };

        using var child = Process.Start(start)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        var watch = Stopwatch.StartNew();
        double maxRss = 0;
        while (!child.WaitForExit(50))
        {
            maxRss = Math.Max(maxRss, ResidentMb(child.Id));
            if (maxRss > memoryBudgetMb)
            {
                child.Kill(entireProcessTree: true);
                return Fail(PointStatus.OverMemoryBudget, FormattableString.Invariant($"resident memory passed {memoryBudgetMb:F0} MB: stopped"));
            }
            if (watch.Elapsed > wallLimit)
            {
                child.Kill(entireProcessTree: true);
                return Fail(PointStatus.OverTimeBudget, FormattableString.Invariant($"still running after {wallLimit.TotalSeconds:F0} s: stopped"));
            }
        }
        var line = stdout.Result.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
        if (child.ExitCode != 0 || line is null)
        {
            var err = stderr.Result.Split('\n').FirstOrDefault(l => l.StartsWith("natgrad: error:"))?.Replace("natgrad: error: ", "")
                      ?? $"exit code {child.ExitCode}";
            return Fail(err.Contains("needs") || err.Contains("supports") ? PointStatus.Refused : PointStatus.Failed, err);
        }
        return JsonSerializer.Deserialize<PointMeasurement>(line, ScalePointCommand.Json)! with { Sweep = sweep };
    }

    private static double ResidentMb(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:"));
            return line is null ? 0 : long.Parse(line[6..].Trim().Split(' ')[0]) / 1024.0;
        }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }
}
