using NaturalGradient.Training.Experiments.OrderVariance;
using NaturalGradient.Tests.Cli;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.OrderVariance;

[Collection("Torch")]
public class OrderVarianceTests
{
    [Fact]
    public void Plan_SegmentsPartitionTheFirstHalf_AndReplacementsComeFromThePool()
    {
        var plan = new StreamPlan(trainCount: 1000, streamLength: 400, segments: 4, seed: 3);
        Assert.Equal(50, plan.SegmentLength);
        Assert.Empty(plan.BaseStream.Intersect(plan.Pool));
        for (int k = 0; k < 4; k++)
        {
            var a = plan.Stream(k, 0);
            var b = plan.Stream(k, 1);
            var range = plan.SegmentRange(k);
            var (start, length) = range.GetOffsetAndLength(a.Length);
            for (int i = 0; i < a.Length; i++)
            {
                bool inside = i >= start && i < start + length;
                if (!inside) { Assert.Equal(plan.BaseStream[i], a[i]); Assert.Equal(a[i], b[i]); }
            }
            Assert.All(a[range], i => Assert.Contains(i, plan.Pool));
            Assert.NotEqual(a[range], b[range]);
            Assert.Equal(a[range].Length, a[range].Distinct().Count());
        }
        Assert.Equal(plan.Stream(2, 1), new StreamPlan(1000, 400, 4, 3).Stream(2, 1));
        Assert.NotEqual(plan.Stream(2, 1), new StreamPlan(1000, 400, 4, 4).Stream(2, 1));
    }

    [Fact]
    public void Plan_RefusesAStreamThatLeavesNoPool()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new StreamPlan(100, 100, 5, 0));
    }

    [Fact]
    public void Variance_IsTheUnbiasedAcrossRunVarianceAveragedOverOutputs()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new double[,] { { 0.1, 0.9 }, { 0.5, 0.5 } });
        var b = tensor(new double[,] { { 0.3, 0.7 }, { 0.5, 0.5 } });
        // per output: var of {0.1, 0.3} = 0.02, of {0.9, 0.7} = 0.02, the rest 0 → mean 0.01
        Assert.Equal(0.01, OutputVariance.Of(new[] { a, b }), 12);
        Assert.Throws<ArgumentException>(() => OutputVariance.Of(new[] { a }));
    }

    [Fact]
    public void Command_OnTinyData_WritesEveryFile()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[] { "order-variance", "--data", "tiny", "--hidden", "4", "--stream", "40", "--segments", "2", "--runs", "2",
            "--batch-size", "10", "--holdout", "20", "--methods", "sgd,tengrad", "--lr", "sgd=0.1,tengrad=0.1", "--out", dir },
            (_, _) => TinyData.Classification());
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        foreach (var f in new[] { "variance.png", "variance.csv", "runs.csv", "variance.md" }) Assert.True(File.Exists(Path.Combine(dir, f)), f);
        Assert.Equal(1 + 2 * 2, File.ReadAllLines(Path.Combine(dir, "variance.csv")).Length);
        Assert.Equal(1 + 2 * 2 * 2, File.ReadAllLines(Path.Combine(dir, "runs.csv")).Length);
        Assert.Equal(0x89, File.ReadAllBytes(Path.Combine(dir, "variance.png"))[0]);
    }

    [Fact]
    public void Command_RejectsRegressionData_AndSingleRuns()
    {
        var reg = CliHarness.Run(new[] { "order-variance", "--data", "tiny", "--out", CliHarness.TempDir() });
        Assert.Equal(2, reg.ExitCode);
        Assert.Equal("natgrad: error: --data: 'tiny-regression' is not a classification data set", Assert.Single(reg.ErrorLines));
        var one = CliHarness.Run(new[] { "order-variance", "--runs", "1", "--out", CliHarness.TempDir() });
        Assert.Equal("natgrad: error: --runs must be ≥ 2 (a variance needs two runs), got 1", Assert.Single(one.ErrorLines));
    }
}
