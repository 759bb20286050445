using NaturalGradient.Cli;
using NaturalGradient.Cli.Commands;
using NaturalGradient.Training.Experiments.Scale;
using NaturalGradient.Tests.Cli;
using NaturalGradient.Training;
using TorchSharp;

namespace NaturalGradient.Tests.Scale;

/// <summary>The scaling experiment's library part: sizes, predicted memory, the plan's budget logic, the probe, the JSON line.</summary>
[Collection("Torch")]
public class ScalePlanTests
{
    [Fact]
    public void ModelSize_CountsParametersPerLayer()
    {
        var size = new ModelSize(Depth: 2, Width: 20, Inputs: 16);
        Assert.Equal(new long[] { 20 * 17, 20 * 21, 1 * 21 }, size.LayerParameters());
        Assert.Equal(781, size.Parameters);
        Assert.Equal(new[] { 20, 20 }, size.Hidden());
    }

    [Fact]
    public void Sweeps_AreTheSeedsSizes()
    {
        var depth = ScalePlan.DepthSweep(ScalePlan.DefaultDepths, width: 20, inputs: 16);
        Assert.Equal(new[] { 1, 2, 4, 8, 16 }, depth.Select(s => s.Depth));
        Assert.All(depth, s => Assert.Equal(20, s.Width));
        var width = ScalePlan.WidthSweep(ScalePlan.DefaultWidths, depth: 2, inputs: 16);
        Assert.Equal(new[] { 16, 32, 64, 128, 256, 512, 1024 }, width.Select(s => s.Width));
        Assert.All(width, s => Assert.Equal(2, s.Depth));
        Assert.Equal(new[] { 1, 2, 4 }, ScalePlan.QuickDepths);
        Assert.Equal(new[] { 16, 64, 256 }, ScalePlan.QuickWidths);
    }

    [Fact]
    public void PredictedMemory_IsTheDenseCurvature_ByDtype()
    {
        var size = new ModelSize(2, 20, 16);
        const double MiB = 1024 * 1024;
        var f32 = new ScalePlan(new[] { "exact" }, memoryBudgetMb: 1000);
        var f64 = new ScalePlan(new[] { "exact" }, memoryBudgetMb: 1000, torch.ScalarType.Float64);
        Assert.Equal(4.0 * 781 * 781, f32.PredictedCurvatureBytes("exact", size));
        Assert.Equal(8.0 * 781 * 781, f64.PredictedCurvatureBytes("exact", size));
        Assert.Equal(4.0 * (340 * 340 + 420 * 420 + 21 * 21), f32.PredictedCurvatureBytes("block", size));
        Assert.Equal(8.0 * 781 * 781 / MiB, f64.PredictedCurvatureMb("exact", size), 9);
        foreach (var cheap in new[] { "sgd", "tengrad", "kfac", "hf" }) Assert.Equal(0, f64.PredictedCurvatureBytes(cheap, size));
        // Width 1024, 2 layers: the dense exact Fisher needs ≈ 4.6 TB in float32.
        Assert.True(f32.PredictedCurvatureMb("exact", new ModelSize(2, 1024, 16)) > 4e6);
    }

    private static PointMeasurement Fake(string method, ModelSize size, PointStatus status, double medianMs) => new()
    {
        Method = method, Sweep = SweepKind.Width, Size = size, Status = status, MedianMs = medianMs, PeakMb = 100,
        Message = status == PointStatus.Measured ? null : "because",
    };

    [Fact]
    public void Plan_StopsAMethodAfterItsFirstBudgetFailure_AndDoesNotLaunchOversizedPoints()
    {
        var plan = new ScalePlan(new[] { "sgd", "exact", "kfac", "tengrad" }, memoryBudgetMb: 200);
        var sizes = ScalePlan.WidthSweep(new[] { 16, 64, 256, 1024 }, depth: 2, inputs: 16);
        var calls = new List<(string, int)>();
        var reported = new List<PointMeasurement>();
        PointMeasurement Measure(string method, ModelSize size)
        {
            calls.Add((method, size.Width));
            if (method == "kfac" && size.Width >= 256) return Fake(method, size, PointStatus.OverTimeBudget, double.NaN);
            if (method == "tengrad" && size.Width == 64) return Fake(method, size, PointStatus.Refused, double.NaN);
            bool sgdAgain = method == "sgd" && calls.Count(c => c == (method, size.Width)) == 2;
            return Fake(method, size, PointStatus.Measured, method == "sgd" ? (sgdAgain ? 3 : 2) : 6);
        }
        var points = plan.Run(SweepKind.Width, sizes, Measure, reported.Add);

        Assert.Equal(16, points.Count);
        Assert.Equal(16 + 4, reported.Count); // every point, then the re-timed reference at each size
        Assert.Equal(8, calls.Count(c => c.Item1 == "sgd"));
        Assert.Equal(2, points.Single(p => p.Method == "sgd" && p.Size.Width == 16).MedianMs);     // the faster of 2 and 3 ms
        Assert.Equal(3, points.Single(p => p.Method == "sgd" && p.Size.Width == 16).SgdOtherMedianMs);
        PointMeasurement At(string m, int w) => points.Single(p => p.Method == m && p.Size.Width == w);
        // kfac: over time at 256, so 1024 is never launched and is recorded as skipped.
        Assert.DoesNotContain(("kfac", 1024), calls);
        Assert.Equal(PointStatus.OverTimeBudget, At("kfac", 256).Status);
        Assert.Equal(PointStatus.Skipped, At("kfac", 1024).Status);
        Assert.Equal("skipped: over time budget at width 256", At("kfac", 1024).Note);
        // exact at 256: 70,401² × 4 B ≈ 18.9 GiB > 200 MiB: not launched, and 1024 skipped.
        Assert.DoesNotContain(("exact", 256), calls);
        Assert.Equal(PointStatus.OverMemoryBudget, At("exact", 256).Status);
        Assert.StartsWith("over memory budget: predicted 18907 MiB", At("exact", 256).Note);
        Assert.Equal(PointStatus.Skipped, At("exact", 1024).Status);
        // A refusal stops the method too.
        Assert.Equal("refused: because", At("tengrad", 64).Note);
        Assert.Equal(new[] { 16, 64 }, calls.Where(c => c.Item1 == "tengrad").Select(c => c.Item2));
        // Ratios to SGD at the same size; none for points that were not measured.
        Assert.Equal(3.0, At("kfac", 16).RatioToSgd, 12);
        Assert.Equal(1.0, At("sgd", 1024).RatioToSgd, 12);
        Assert.True(double.IsNaN(At("exact", 256).RatioToSgd));
        Assert.True(At("exact", 64).PredictedCurvatureMb > 0);
    }

    [Fact]
    public void Plan_RetimesTheReference_AndKeepsTheFasterMedian()
    {
        var plan = new ScalePlan(new[] { "sgd", "kfac" }, memoryBudgetMb: 1000);
        var size = new ModelSize(1, 20, 16);
        int sgdCalls = 0;
        var points = plan.Run(SweepKind.Depth, new[] { size },
            (m, s) => Fake(m, s, PointStatus.Measured, m == "kfac" ? 12 : ++sgdCalls == 1 ? 8 : 2)); // a burst of load during the first SGD timing
        var sgd = points.Single(p => p.Method == "sgd");
        Assert.Equal(2, sgd.MedianMs);
        Assert.Equal(8, sgd.SgdOtherMedianMs);
        Assert.Equal(1.0, sgd.RatioToSgd);
        Assert.Equal(6.0, points.Single(p => p.Method == "kfac").RatioToSgd, 12);
        int once = 0;
        new ScalePlan(new[] { "sgd" }, 1000) { RetimeReference = false }.Run(SweepKind.Depth, new[] { size },
            (m, s) => { once++; return Fake(m, s, PointStatus.Measured, 1); });
        Assert.Equal(1, once);
    }

    [Fact]
    public void WithinBudgets_MarksSlowOrLargeMeasurements()
    {
        var config = QuickConfig(timeBudgetMs: 100, memoryBudgetMb: 500);
        var size = new ModelSize(1, 8, 4);
        Assert.Equal(PointStatus.Measured, ScaleCommand.WithinBudgets(config, Fake("sgd", size, PointStatus.Measured, 99)).Status);
        var slow = ScaleCommand.WithinBudgets(config, Fake("sgd", size, PointStatus.Measured, 150));
        Assert.Equal(PointStatus.OverTimeBudget, slow.Status);
        Assert.Equal("over time budget: median step 150 ms > budget 100 ms", slow.Note);
        Assert.Equal(150, slow.MedianMs); // the figures are kept
        var big = ScaleCommand.WithinBudgets(config, Fake("sgd", size, PointStatus.Measured, 1) with { PeakMb = 600 });
        Assert.Equal(PointStatus.OverMemoryBudget, big.Status);
    }

    [Fact]
    public void Probe_MeasuresSgdOnATinyModel()
    {
        var m = StepCostProbe.Measure("sgd", new ModelSize(1, 8, 4), new ProbeOptions { BatchSize = 16, Warmup = 1, Repeats = 5 });
        Assert.Equal(PointStatus.Measured, m.Status);
        Assert.Equal(5, m.TimedSteps);
        Assert.True(m.MedianMs > 0 && m.MedianMs < 1000, $"median {m.MedianMs} ms");
        Assert.True(m.P10Ms <= m.MedianMs && m.MedianMs <= m.P90Ms);
        Assert.True(m.PeakMb > 10 && m.PeakMb < 100_000, $"peak {m.PeakMb} MiB");
        Assert.True(m.Threads >= 1);
        Assert.Equal(new ModelSize(1, 8, 4), m.Size);
    }

    [Fact]
    public void Probe_ReportsARefusalInsteadOfThrowing()
    {
        var catalog = new OptimizerCatalog().Register("picky", "refuses every model",
            _ => throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.MaxExactParameters), "MaxExactParameters: the model has too many parameters"));
        var m = StepCostProbe.Measure("picky", new ModelSize(1, 4, 2), new ProbeOptions { BatchSize = 4, Warmup = 0, Repeats = 1 }, catalog);
        Assert.Equal(PointStatus.Refused, m.Status);
        Assert.Equal("refused: MaxExactParameters: the model has too many parameters", m.Note);
    }

    [Fact]
    public void Percentile_InterpolatesBetweenOrderStatistics()
    {
        var v = new double[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
        Assert.Equal(5.5, StepCostProbe.Percentile(v, 0.5), 12);
        Assert.Equal(1.9, StepCostProbe.Percentile(v, 0.1), 12);
        Assert.Equal(9.1, StepCostProbe.Percentile(v, 0.9), 12);
        Assert.Equal(3, StepCostProbe.Percentile(new double[] { 3 }, 0.9));
    }

    [Fact]
    public void JsonLine_RoundTrips()
    {
        var point = new PointMeasurement
        {
            Method = "kfac", Sweep = SweepKind.Width, Size = new ModelSize(2, 64, 16), Status = PointStatus.Measured,
            MedianMs = 5.37, P10Ms = 4.23, P90Ms = 6.25, TimedSteps = 10, PeakMb = 164.5, Threads = 1, PredictedCurvatureMb = 0,
        };
        var line = point.ToJsonLine();
        Assert.DoesNotContain('\n', line);
        Assert.StartsWith("{", line);
        Assert.Equal(point, PointMeasurement.FromJsonLine(line)); // NaN fields (ratio, observed RSS) survive too
        var refused = point with { Status = PointStatus.Refused, Message = "TENGraD supports \"Linear\" layers", MedianMs = double.NaN };
        Assert.Equal(refused, PointMeasurement.FromJsonLine(refused.ToJsonLine()));
        Assert.Throws<FormatException>(() => PointMeasurement.FromJsonLine("{\"method\": 3"));
    }

    internal static ScaleCommand.Config QuickConfig(double timeBudgetMs = 2000, double memoryBudgetMb = 4000, string dir = "") => new(
        new[] { "sgd" }, Array.Empty<string>(), new[] { 1 }, 8, new[] { 8 }, 1, 4,
        new ProbeOptions { BatchSize = 8, Warmup = 1, Repeats = 2 }, Threads: 1, Fisher: "empirical",
        timeBudgetMs, memoryBudgetMb, Quick: false, InProcess: false, OutDir: dir);
}

/// <summary>The command: option handling, the child process and its budgets, the files.</summary>
[Collection("Torch")]
public class ScaleCommandTests
{
    private static readonly string[] AllFiles =
        { "scale.csv", "scale.json", "scale.md", "time_vs_depth.png", "memory_vs_depth.png", "time_vs_width.png", "memory_vs_width.png" };

    [Fact]
    public void QuickInProcess_WritesEveryFile()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[] { "scale", "--quick", "--in-process", "--methods", "tengrad", "--depths", "1,2", "--width", "8", "--widths", "8",
            "--inputs", "4", "--batch-size", "8", "--warmup", "1", "--out", dir });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        foreach (var f in AllFiles) Assert.True(File.Exists(Path.Combine(dir, f)), f);
        foreach (var png in AllFiles.Where(f => f.EndsWith(".png")))
            Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, File.ReadAllBytes(Path.Combine(dir, png)).Take(8));
        var csv = File.ReadAllLines(Path.Combine(dir, "scale.csv"));
        Assert.Equal(1 + 2 * (2 + 1), csv.Length); // sgd (added as the reference) and tengrad × (2 depths + 1 width)
        Assert.All(csv.Skip(1), row => Assert.Contains(",\"measured\",", row));
        var timedSteps = Array.IndexOf(csv[0].Split(','), "timed_steps");
        Assert.All(csv.Skip(1), row => Assert.Equal("2", row.Split(',')[timedSteps])); // --quick: 2 timed steps
        var json = File.ReadAllText(Path.Combine(dir, "scale.json"));
        foreach (var key in new[] { "\"torchsharp\"", "\"cpu_model\"", "\"torch_threads\"", "\"os\"", "\"ratio_to_sgd\"" }) Assert.Contains(key, json);
        Assert.Contains("sgd added", outcome.Stdout);
        Assert.Contains("| 1 × 8 |", File.ReadAllText(Path.Combine(dir, "scale.md")));
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
    }

    [Fact]
    public void ChildProcess_MeasuresOnePoint_WithParentSideRss()
    {
        var p = ScaleCommand.InChild(ScalePlanTests.QuickConfig(), NatgradExecutable.Resolve(), "sgd", new ModelSize(1, 8, 4), CancellationToken.None);
        Assert.True(p.Status == PointStatus.Measured, p.Note);
        Assert.Equal(2, p.TimedSteps);
        Assert.True(p.MedianMs > 0);
        Assert.True(p.PeakMb > 10, $"peak {p.PeakMb}");
        // Polled every 20 ms, and the child still serialises its result after reading VmHWM: close to, not bounded by, the peak.
        Assert.True(p.ObservedMaxRssMb > 10 && p.ObservedMaxRssMb < 2 * p.PeakMb, $"observed {p.ObservedMaxRssMb}, peak {p.PeakMb}");
        Assert.Equal(1, p.Threads);
    }

    [Fact]
    public void ChildProcess_PastTheMemoryBudget_IsStopped()
    {
        var p = ScaleCommand.InChild(ScalePlanTests.QuickConfig(memoryBudgetMb: 20), NatgradExecutable.Resolve(), "sgd", new ModelSize(1, 8, 4), CancellationToken.None);
        Assert.Equal(PointStatus.OverMemoryBudget, p.Status);
        Assert.StartsWith("over memory budget: resident memory reached", p.Note);
        Assert.True(p.ObservedMaxRssMb > 20);
    }

    [Fact]
    public void ChildProcess_UnknownMethod_IsAFailureWithTheChildsMessage()
    {
        var p = ScaleCommand.InChild(ScalePlanTests.QuickConfig(), NatgradExecutable.Resolve(), "newton", new ModelSize(1, 8, 4), CancellationToken.None);
        Assert.Equal(PointStatus.Failed, p.Status);
        Assert.StartsWith("failed: --method: 'newton' is not one of", p.Note);
        Assert.EndsWith("(exit code 2)", p.Note);
    }

    [Fact]
    public void Runner_KillsAChildPastItsTimeLimit_OrWithoutItsStartMarker()
    {
        if (!File.Exists("/bin/sleep")) return;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var late = ProcessRunner.Run("/bin/sleep", new[] { "30" }, new ChildLimits { RunLimit = TimeSpan.FromMilliseconds(200) });
        Assert.Equal(ChildEnd.OverTime, late.End);
        Assert.Null(late.ExitCode);
        var silent = ProcessRunner.Run("/bin/sleep", new[] { "30" }, new ChildLimits { StartMarker = "go", StartupLimit = TimeSpan.FromMilliseconds(200) });
        Assert.Equal(ChildEnd.NoStart, silent.End);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), watch.Elapsed.ToString());
        var quick = ProcessRunner.Run("/bin/sh", new[] { "-c", "echo go; echo done; echo oops >&2; exit 3" }, new ChildLimits { StartMarker = "go", RunLimit = TimeSpan.FromSeconds(20) });
        Assert.Equal(ChildEnd.Exited, quick.End);
        Assert.Equal(3, quick.ExitCode);
        Assert.Equal(new[] { "go", "done" }, quick.Stdout);
        Assert.Equal(new[] { "oops" }, quick.Stderr);
        Assert.NotNull(quick.SinceMarker);
    }

    [Fact]
    public void Methods_SgdFirst_AbsentDefaultsSkippedWithANote_OthersRejected()
    {
        var withoutHf = new OptimizerCatalog().Register("sgd", "", OptimizerCatalog.Default.Create).Register("kfac", "", OptimizerCatalog.Default.Create);
        var (methods, notes) = ScaleCommand.Methods("kfac, hf ,KFAC", withoutHf);
        Assert.Equal(new[] { "sgd", "kfac" }, methods);
        Assert.Contains(notes, n => n.Contains("'hf' is not registered"));
        Assert.Contains(notes, n => n.StartsWith("sgd added"));
        var all = ScaleCommand.Methods(ScaleCommand.DefaultMethods, OptimizerCatalog.Default);
        Assert.Equal(new[] { "sgd", "exact", "block", "tengrad", "kfac", "hf" }, all.Methods);
        Assert.Empty(all.Notes);
        var e = Assert.Throws<UsageException>(() => ScaleCommand.Methods("sgd,newton", OptimizerCatalog.Default));
        Assert.StartsWith("--methods: 'newton' is not one of", e.Message);
    }

    [Theory]
    [InlineData(new[] { "--methods", "sgd,newton" }, "natgrad: error: --methods: 'newton' is not one of")]
    [InlineData(new[] { "--depths", "1,x" }, "natgrad: error: --depths: 'x' is not a positive integer")]
    [InlineData(new[] { "--widths", "0" }, "natgrad: error: --widths: '0' is not a positive integer")]
    [InlineData(new[] { "--depths", "none", "--widths", "none" }, "natgrad: error: --depths and --widths are both 'none'")]
    [InlineData(new[] { "--memory-budget-mb", "0" }, "natgrad: error: --memory-budget-mb must be > 0, got 0")]
    [InlineData(new[] { "--time-budget-ms", "-5" }, "natgrad: error: --time-budget-ms must be > 0, got -5")]
    [InlineData(new[] { "--repeats", "0" }, "natgrad: error: --repeats must be ≥ 1, got 0")]
    [InlineData(new[] { "--dtype", "float16" }, "natgrad: error: --dtype: 'float16' is not one of float32, float64")]
    [InlineData(new[] { "--threads", "x" }, "natgrad: error: --threads: 'x' is not an integer")]
    public void BadOptions_OneLine_ExitCode2(string[] extra, string expectedStart)
    {
        var outcome = CliHarness.Run(new[] { "scale", "--in-process", "--out", CliHarness.TempDir() }.Concat(extra).ToArray());
        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith(expectedStart, Assert.Single(outcome.ErrorLines));
    }
}
