using NaturalGradient.Cli.Reports;
using NaturalGradient.Training;
using NaturalGradient.Training.Experiments.Compare;

namespace NaturalGradient.Tests.Compare;

public class CompareSummaryTests
{
    private static CompareRunResult Run(string opt, double lr, long seed, double train, double test, double? acc = null,
        RunStatus status = RunStatus.Finished, double stepMs = 1) => new()
    {
        Spec = new CompareRunSpec(opt, lr, seed, 128), Status = status, FinalTrainLoss = train, FinalTestLoss = test,
        FinalTestAccuracy = acc, MedianStepMs = stepMs, WallSeconds = 1, Steps = 10,
        Curve = new[] { new EpochPoint(0, 0, 0, 1, 1, null), new EpochPoint(1, 10, 0.5, train, test, acc) },
    };

    private static readonly CompareRunResult[] Results =
    {
        Run("sgd", 0.1, 0, 0.30, 0.40, 0.7, stepMs: 2), Run("sgd", 0.1, 1, 0.50, 0.60, 0.8, stepMs: 2),
        Run("sgd", 0.01, 0, 0.35, 0.30, 0.9, stepMs: 2), Run("sgd", 0.01, 1, 0.35, 0.30, 0.9, stepMs: 2),
        Run("kfac", 1.0, 0, 0.01, 0.5, status: RunStatus.Diverged), Run("kfac", 1.0, 1, 0.01, 0.5),
        Run("kfac", 0.1, 0, 0.20, 0.25, 0.95, stepMs: 6), Run("kfac", 0.1, 1, 0.22, 0.27, 0.93, stepMs: 6),
        Run("hf", 0.1, 0, double.NaN, double.NaN, status: RunStatus.Diverged),
    };

    [Fact]
    public void Cells_AverageOverSeeds_WithSampleStandardDeviation()
    {
        var cell = CompareSummary.Cells(Results).Single(c => c.Optimizer == "sgd" && c.LearningRate == 0.1);
        Assert.Equal(0.40, cell.TrainLoss.Mean, 12);
        Assert.Equal(Math.Sqrt(0.02), cell.TrainLoss.Sd, 12);
        Assert.Equal(2, cell.TrainLoss.Count);
    }

    [Theory]
    [InlineData(SelectionCriterion.TrainLoss, 0.01)]   // sgd: mean 0.35 at 0.01 beats 0.40 at 0.1
    [InlineData(SelectionCriterion.TestLoss, 0.01)]
    [InlineData(SelectionCriterion.TestAccuracy, 0.01)]
    public void Best_PicksByCriterion(SelectionCriterion criterion, double expectedSgdLr)
    {
        var best = CompareSummary.Best(CompareSummary.Cells(Results), criterion);
        Assert.Equal(expectedSgdLr, best.Single(b => b.Optimizer == "sgd").LearningRate);
    }

    [Fact]
    public void Best_IgnoresCellsWithADivergedSeed_AndDropsMethodsThatAlwaysDiverged()
    {
        var best = CompareSummary.Best(CompareSummary.Cells(Results), SelectionCriterion.TrainLoss);
        Assert.Equal(0.1, best.Single(b => b.Optimizer == "kfac").LearningRate);   // lr 1.0 had the lowest loss but a diverged seed
        Assert.DoesNotContain(best, b => b.Optimizer == "hf");
    }

    [Fact]
    public void Report_ListsBestLrRatioToSgdAndDivergedMethods()
    {
        var cells = CompareSummary.Cells(Results);
        var best = CompareSummary.Best(cells, SelectionCriterion.TrainLoss);
        var settings = new Dictionary<string, OptimizerSettings>
        {
            ["sgd"] = MethodDefaults.For("sgd") with { Momentum = 0.9 },
            ["kfac"] = MethodDefaults.For("kfac") with { Damping = 0.003 },
        };
        var md = CompareReport.Render(new CompareReport.Context("tiny", "mlp", 1, new long[] { 0, 1 }, new[] { 128 },
            SelectionCriterion.TrainLoss, settings, "natgrad compare ...", new Dictionary<string, List<double>>()), cells, best);
        // Each method's settings: only what it reads, the learning rate left to the grid.
        var sgdSettings = md.Split('\n').First(l => l.StartsWith("| sgd | "));
        Assert.Contains("Momentum = 0.9", sgdSettings);
        Assert.DoesNotContain("Damping", sgdSettings);
        Assert.DoesNotContain("LearningRate", sgdSettings);
        Assert.Contains("Damping = 0.003", md.Split('\n').First(l => l.StartsWith("| kfac | ")));
        Assert.DoesNotContain("OptimizerSettings {", md);
        var kfacRow = md.Split('\n').First(l => l.StartsWith("| kfac | 0.1 |"));   // the results table precedes the grid
        Assert.Contains("| 3.00 |", kfacRow);                        // 6 ms / 2 ms
        Assert.Contains("0.21 ± 0.014", kfacRow);
        Assert.Contains("| hf | – | every learning rate diverged or was refused |", md);
        Assert.Contains("![loss vs steps](loss_vs_steps.png)", md);
    }

    [Fact]
    public void RunKey_IsStableAndSensitiveToEverySetting()
    {
        Assert.Equal(RunKey.For("a=1\nb=2"), RunKey.For("a=1\r\nb=2"));
        Assert.NotEqual(RunKey.For("a=1\nb=2"), RunKey.For("a=1\nb=3"));
        Assert.Equal(16, RunKey.For("x").Length);
    }
}
