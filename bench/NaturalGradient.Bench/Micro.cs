using System.Globalization;
using System.Text;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace NaturalGradient.Bench;

/// <summary><c>micro</c>: runs <see cref="Kernels"/> with BenchmarkDotNet in this process and saves the medians.</summary>
internal static class Micro
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(bool quick)
    {
        // In-process: no generated project to build (the libtorch native files are already beside this program).
        var job = (quick ? Job.Dry.WithIterationCount(5).WithWarmupCount(2) : Job.ShortRun)
            .WithToolchain(InProcessEmitToolchain.Instance).WithId(quick ? "quick" : "short");
        var config = DefaultConfig.Instance.AddJob(job).WithOptions(ConfigOptions.DisableOptimizationsValidator);
        var machine = Results.MachineLine();
        var summary = BenchmarkRunner.Run<Kernels>(config);
        var md = new StringBuilder("# Kernel micro-benchmarks\n\n");
        md.AppendLine(string.Create(Inv, $"`dotnet run -c Release --project bench/NaturalGradient.Bench -- micro{(quick ? " --quick" : "")}`, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; "));
        md.AppendLine($"BenchmarkDotNet {typeof(BenchmarkRunner).Assembly.GetName().Version}, job '{job.Id}' in process, float32, 1 torch thread. Machine: {machine}.").AppendLine();
        md.AppendLine("| kernel | median (µs) | mean (µs) | stddev (µs) | allocated (managed) |");
        md.AppendLine("|---|---:|---:|---:|---:|");
        var rows = new List<object>();
        foreach (var report in summary.Reports)
        {
            var name = report.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo.Trim('\'');
            var s = report.ResultStatistics;
            if (s is null)
            {
                md.AppendLine($"| {name} | failed | | | |");
                rows.Add(new { kernel = name, failed = true });
                continue;
            }
            long? bytes = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase);
            md.AppendLine(string.Create(Inv, $"| {name} | {s.Median / 1000:F1} | {s.Mean / 1000:F1} | {s.StandardDeviation / 1000:F1} | {(bytes is { } b ? $"{b:N0} B" : "")} |"));
            Console.WriteLine(string.Create(Inv, $"{name,-70} median {s.Median / 1000,10:F1} µs"));
            rows.Add(new { kernel = name, median_us = s.Median / 1000, mean_us = s.Mean / 1000, stddev_us = s.StandardDeviation / 1000, iterations = s.N, allocated_bytes = bytes });
        }
        Results.Save("micro", new { mode = "micro", job = job.Id, machine = Results.Machine(), rows }, md.ToString());
        return summary.Reports.All(r => r.ResultStatistics is not null) ? 0 : 1;
    }
}
