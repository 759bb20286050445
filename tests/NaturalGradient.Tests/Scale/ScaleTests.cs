using NaturalGradient.Experiments.Scale;
using NaturalGradient.Tests.Cli;
using NaturalGradient.Training;

namespace NaturalGradient.Tests.Scale;

[Collection("Torch")]
public class ScaleTests
{
    [Fact]
    public void ModelSize_CountsParametersPerLayer()
    {
        var size = new ModelSize(Depth: 2, Width: 20, Inputs: 16);
        Assert.Equal(new long[] { 20 * 17, 20 * 21, 1 * 21 }, size.LayerParameters());
        Assert.Equal(781, size.Parameters);
    }

    [Fact]
    public void PredictedMemory_IsTheDenseCurvature()
    {
        var plan = new ScalePlan(new[] { "exact", "block", "tengrad" }, memoryBudgetMb: 1000);
        var size = new ModelSize(2, 20, 16);
        Assert.Equal(781.0 * 781 * 4 / 1e6, plan.PredictedCurvatureMb("exact", size), 9);
        Assert.Equal((340.0 * 340 + 420 * 420 + 21 * 21) * 4 / 1e6, plan.PredictedCurvatureMb("block", size), 9);
        Assert.Equal(0, plan.PredictedCurvatureMb("tengrad", size));
    }

    [Fact]
    public void Plan_StopsAMethodAfterItsFirstBudgetFailure_AndRefusesOversizedPoints()
    {
        var plan = new ScalePlan(new[] { "sgd", "exact", "kfac" }, memoryBudgetMb: 200);
        var sizes = new[] { 16, 64, 256, 1024 }.Select(w => new ModelSize(2, w, 16)).ToList();
        var calls = new List<(string, int)>();
        PointMeasurement Fake(string method, ModelSize size)
        {
            calls.Add((method, size.Width));
            bool slow = method == "kfac" && size.Width >= 256;
            return new PointMeasurement
            {
                Method = method, Sweep = SweepKind.Width, Size = size,
                Status = slow ? PointStatus.OverTimeBudget : PointStatus.Measured, MedianMs = method == "sgd" ? 2 : 6,
            };
        }
        var points = plan.Run(SweepKind.Width, sizes, Fake);
        Assert.Equal(12, points.Count);
        Assert.DoesNotContain(("kfac", 1024), calls);                         // stopped after 256
        Assert.Equal(PointStatus.Skipped, points.Single(p => p.Method == "kfac" && p.Size.Width == 1024).Status);
        Assert.Equal(PointStatus.OverMemoryBudget, points.Single(p => p.Method == "exact" && p.Size.Width == 256).Status);
        Assert.DoesNotContain(("exact", 256), calls);                         // predicted over budget: not launched
        Assert.Equal(3.0, points.Single(p => p.Method == "kfac" && p.Size.Width == 16).RatioToSgd, 12);
    }

    [Fact]
    public void Probe_MeasuresSgdOnATinyModel()
    {
        var m = StepCostProbe.Measure("sgd", new ModelSize(1, 8, 4), batchSize: 16, warmup: 1, repeats: 3, new OptimizerSettings());
        Assert.Equal(PointStatus.Measured, m.Status);
        Assert.True(m.MedianMs > 0 && m.P10Ms <= m.MedianMs && m.MedianMs <= m.P90Ms);
        Assert.True(m.PeakMb > 10);
    }

    [Fact]
    public void ScaleCommand_InProcess_WritesEveryFile()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[] { "scale", "--in-process", "--methods", "sgd,tengrad", "--depths", "1,2", "--widths", "8,16",
            "--batch-size", "16", "--warmup", "1", "--repeats", "2", "--out", dir });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        foreach (var f in new[] { "scale.csv", "scale.json", "scale.md", "time_vs_depth.png", "memory_vs_depth.png", "time_vs_width.png", "memory_vs_width.png" })
            Assert.True(File.Exists(Path.Combine(dir, f)), f);
        Assert.Equal(1 + 2 * 2 * 2, File.ReadAllLines(Path.Combine(dir, "scale.csv")).Length);
        Assert.Equal(0x89, File.ReadAllBytes(Path.Combine(dir, "time_vs_depth.png"))[0]);
    }

    [Theory]
    [InlineData(new[] { "--methods", "sgd,newton" }, "natgrad: error: --methods: 'newton' is not one of")]
    [InlineData(new[] { "--depths", "1,x" }, "natgrad: error: --depths: 'x' is not a positive integer")]
    [InlineData(new[] { "--memory-budget-mb", "0" }, "natgrad: error: --memory-budget-mb must be > 0, got 0")]
    public void BadOptions_OneLine_ExitCode2(string[] extra, string expectedStart)
    {
        var outcome = CliHarness.Run(new[] { "scale", "--in-process", "--out", CliHarness.TempDir() }.Concat(extra).ToArray());
        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith(expectedStart, Assert.Single(outcome.ErrorLines));
    }
}
