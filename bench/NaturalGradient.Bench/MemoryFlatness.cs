using System.Globalization;
using System.Text;
using NaturalGradient.Training.Data;
using NaturalGradient.Fisher;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;

namespace NaturalGradient.Bench;

/// <summary>
/// <c>memory</c>: per method, a training run of at least 2,000 steps (weather, an MLP of hidden widths [32,16] unless <c>--hidden</c> names others, batch 32, exact Fisher; K-BFGS, which needs them, the empirical one)
/// printing the resident set size at step 100 and at step 2,000 and the growth between them; exit code 1 when a
/// growth reaches 5% (a leak of native tensors or of their managed wrappers).
/// </summary>
/// <remarks>
/// Each method is trained twice in this process. The first run starts cold: between steps 100 and ~1,000 the .NET
/// runtime re-compiles the hot methods at tier 1 (tiered compilation), which adds several MiB of native code and JIT
/// data once (with DOTNET_TieredCompilation=0 that growth disappears). The second, identical run starts after that and
/// is the one checked against the limit; both are reported.
/// </remarks>
internal static class MemoryFlatness
{
    private const int Batch = 32;
    private static int Steps = 2000;
    private const double Limit = 5;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Records the RSS that the trainer samples (every 50 steps) and the managed heap size at the same moments.</summary>
    private sealed class RssProbe : ITrainingProgress
    {
        public List<(long Step, double RssMb, double ManagedMb)> Samples { get; } = new();

        public void OnStep(StepMetrics step)
        {
            if (step.RssMb is { } r && step.Step <= Steps) Samples.Add((step.Step, r, GC.GetGCMemoryInfo().HeapSizeBytes / (1024.0 * 1024.0)));
        }

        public double? At(long step) => Samples.Where(s => s.Step == step).Select(s => (double?)s.RssMb).FirstOrDefault();
    }

    private sealed record Outcome(double? Rss100, double? Rss1000, double? Rss2000, string? Error, RssProbe Probe)
    {
        public double Growth => Rss100 is { } a && Rss2000 is { } b ? 100 * (b - a) / a : double.NaN;
        public double SecondHalf => Rss1000 is { } a && Rss2000 is { } b ? 100 * (b - a) / a : double.NaN;
    }

    private static Outcome Train(Dataset data, string method, int epochs, int[] hidden)
    {
        var probe = new RssProbe();
        string? error = null;
        try
        {
            new Trainer(new ModelSpec { Hidden = hidden },
                new OptimizerSettings { Name = Perf.StepConfigs.BaseMethod(method), KfacInversePrecision = Perf.StepConfigs.InversePrecisionOf(method), LearningRate = 0.05, Momentum = 0, Damping = 1e-2, Fisher = method == "kbfgs" ? FisherKind.Empirical : FisherKind.Exact, HfMaxIterations = 10 },
                new TrainerOptions { Epochs = epochs, BatchSize = Batch, Seed = 0, Threads = 1 }).Run(data, probe);
        }
        catch (TrainingDivergedException e)
        {
            error = e.Message;
        }
        return new Outcome(probe.At(100), probe.At(1000), probe.At(Steps), error, probe);
    }

    private static string Pct(double v) => double.IsFinite(v) ? Math.Round(v, 1).ToString("+0.0;-0.0;+0.0", Inv) + "%" : "n/a";

    /// <param name="methods">Catalog names, and kfac-bf16inv / ekfac-bf16inv (the solve in bfloat16).</param>
    /// <param name="steps">Steps per run (≥ 2,000; the issue's check uses 10,000): RSS is compared at 1,000 and at the end.</param>
    /// <param name="hidden">The MLP's hidden widths (null: [32,16]); equal widths give layers of one shape, whose TENGraD Grams are formed together.</param>
    public static int Run(IReadOnlyList<string> methods, int steps = 2000, int[]? hidden = null)
    {
        hidden ??= new[] { 32, 16 };
        var net = $"MLP [{string.Join(",", hidden)}]";
        bool defaultNet = hidden.SequenceEqual(new[] { 32, 16 });
        if (steps < 2000 || steps % 50 != 0) throw new ArgumentException($"option --steps: a multiple of 50 and at least 2000, got {steps}");
        Steps = steps;
        using var data = DatasetCatalog.Load("weather", new DataOptions());
        int stepsPerEpoch = (int)Math.Ceiling(data.TrainCount / (double)Batch);
        int epochs = (int)Math.Ceiling(Steps / (double)stepsPerEpoch);
        var machine = Results.MachineLine();
        Console.WriteLine($"memory: weather, {net}, batch {Batch}, {epochs} epochs × {stepsPerEpoch} steps, twice per method; {machine}");
        var md = new StringBuilder(string.Create(Inv, $"# Resident memory over {Steps:N0} steps\n\n"));
        md.AppendLine(string.Create(Inv, $"`dotnet run -c Release --project bench/NaturalGradient.Bench -- memory{(methods.SequenceEqual(new[] { "tengrad", "kfac" }) ? "" : " --methods " + string.Join(",", methods))}{(Steps == 2000 ? "" : $" --steps {Steps}")}{(defaultNet ? "" : $" --hidden {string.Join(",", hidden)}")}`, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC.  "));
        md.AppendLine(string.Create(Inv, $"weather, {net} tanh, batch {Batch}, {epochs} epochs ({epochs * stepsPerEpoch} steps), exact Fisher (kbfgs: empirical), lr 0.05, damping 0.01, no momentum, 1 torch thread.  "));
        md.AppendLine($"RSS as the trainer samples it (every 50 steps). Each method is trained twice in one process: the first run starts cold (the runtime's");
        md.AppendLine($"tier-1 JIT re-compilation adds native memory once, between steps 100 and ~1,000); the second run is checked: growth from step 100 to");
        md.AppendLine($"step {Steps:N0} must stay below {Limit}%.  ");
        md.AppendLine($"Machine: {machine}.").AppendLine();
        md.AppendLine($"| method | run | RSS at step 100 (MiB) | RSS at step 1,000 | RSS at step {Steps:N0} | growth 100 → {Steps:N0} | growth 1,000 → {Steps:N0} | below {Limit}% |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---|");
        var rows = new List<object>();
        bool ok = true;
        foreach (var method in methods)
        {
            foreach (var run in new[] { "cold", "checked" })
            {
                var o = Train(data, method, epochs, hidden);
                bool checkedRun = run == "checked";
                bool pass = o.Error is null && o.Growth < Limit;
                if (checkedRun) ok &= pass;
                string verdict = !checkedRun ? "(not checked)" : pass ? "yes" : "**no**";
                Console.WriteLine(o.Error is not null
                    ? $"{method,-8} {run,-8} failed: {o.Error}"
                    : string.Create(Inv, $"{method,-8} {run,-8} RSS step 100 {o.Rss100:F1} MiB, step 1000 {o.Rss1000:F1} MiB, step {Steps} {o.Rss2000:F1} MiB: growth {Pct(o.Growth)} (1,000 → {Steps}: {Pct(o.SecondHalf)}){(checkedRun && !pass ? $"  ≥ {Limit}%: FAIL" : "")}"));
                md.AppendLine(o.Error is not null
                    ? $"| {method} | {run} | | | | | | failed: {o.Error} |"
                    : string.Create(Inv, $"| {method} | {run} | {o.Rss100:F1} | {o.Rss1000:F1} | {o.Rss2000:F1} | {Pct(o.Growth)} | {Pct(o.SecondHalf)} | {verdict} |"));
                rows.Add(new
                {
                    method, run, rss_mb_step_100 = o.Rss100, rss_mb_step_1000 = o.Rss1000, rss_mb_step_2000 = o.Rss2000,
                    growth_percent = o.Growth, growth_percent_1000_to_2000 = o.SecondHalf, checked_run = checkedRun, pass, error = o.Error,
                    samples = o.Probe.Samples.Select(x => new { step = x.Step, rss_mb = x.RssMb, managed_heap_mb = x.ManagedMb }),
                });
            }
        }
        Results.Save("memory", new { mode = "memory", steps = Steps, hidden, batch = Batch, epochs, limit_percent = Limit, machine = Results.Machine(), rows }, md.ToString());
        Console.WriteLine(ok ? $"memory: every checked growth < {Limit}%" : $"memory: FAILED (a checked growth ≥ {Limit}%, or a failed run)");
        return ok ? 0 : 1;
    }
}
