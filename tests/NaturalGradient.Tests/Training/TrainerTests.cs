using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Training;

[Collection("Torch")]
public class TrainerTests
{
    private static TrainingResult Train(NaturalGradient.Training.Data.Dataset data, long seed = 0, double lr = 0.05, int epochs = 3, string optimizer = "sgd",
        int batch = 16, ITrainingProgress? progress = null, ScalarType dtype = ScalarType.Float32, ModelSpec? model = null)
    {
        var trainer = new Trainer(model ?? new ModelSpec { Hidden = new[] { 8 } },
            new OptimizerSettings { Name = optimizer, LearningRate = lr },
            new TrainerOptions { Epochs = epochs, BatchSize = batch, Seed = seed, Dtype = dtype });
        return trainer.Run(data, progress);
    }

    [Fact]
    public void Sgd_TinyRegression_TrainAndTestLossDecrease()
    {
        using var data = TinyData.Regression();
        var result = Train(data, epochs: 5);
        Assert.True(result.Final.TrainLoss < 0.5 * result.Epochs[0].TrainLoss,
            $"train loss {result.Epochs[0].TrainLoss} → {result.Final.TrainLoss}");
        Assert.True(result.Final.TestLoss < result.Epochs[0].TestLoss);
        Assert.Null(result.Final.TestAccuracy);
    }

    [Fact]
    public void Run_CountsStepsEpochsAndSamplesRss()
    {
        using var data = TinyData.Regression(train: 40);
        var result = Train(data, epochs: 2, batch: 16);
        Assert.Equal(3, result.Plan.StepsPerEpoch);          // 16 + 16 + 8
        Assert.Equal(6, result.Steps.Count);
        Assert.Equal(new long[] { 1, 2, 3, 4, 5, 6 }, result.Steps.Select(s => s.Step));
        Assert.Equal(new[] { 1, 1, 1, 2, 2, 2 }, result.Steps.Select(s => s.Epoch));
        Assert.Equal(new[] { 0, 1, 2 }, result.Epochs.Select(e => e.Epoch));
        Assert.NotNull(result.Steps[0].RssMb);               // step 1
        Assert.NotNull(result.Steps[^1].RssMb);              // last step
        Assert.Null(result.Steps[2].RssMb);
        Assert.Null(result.RssAtStep100Mb);
        Assert.All(result.Steps, s => Assert.True(s.StepMs >= 0 && s.LearningRate == 0.05));
    }

    [Fact]
    public void SameSeed_GivesIdenticalLosses_DifferentSeedDoesNot()
    {
        using var data = TinyData.Regression();
        var a = Train(data, seed: 1).Steps.Select(s => s.Loss).ToArray();
        var b = Train(data, seed: 1).Steps.Select(s => s.Loss).ToArray();
        var c = Train(data, seed: 2).Steps.Select(s => s.Loss).ToArray();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Adam_Classification_ReportsAccuracyAndLearns()
    {
        using var data = TinyData.Classification();
        var result = Train(data, optimizer: "adam", lr: 0.05, epochs: 4);
        Assert.NotNull(result.Final.TrainAccuracy);
        Assert.NotNull(result.Final.TestAccuracy);
        Assert.True(result.Final.TrainAccuracy > 0.8, $"accuracy {result.Final.TrainAccuracy}");
        Assert.True(result.Final.TrainLoss < result.Epochs[0].TrainLoss);
    }

    [Fact]
    public void ConvNet_TrainsInFloat64()
    {
        using var data = TinyData.Images();
        var result = Train(data, epochs: 1, batch: 8, dtype: ScalarType.Float64, model: new ModelSpec { Kind = ModelKind.Conv });
        Assert.Equal(2, result.Steps.Count);
        Assert.All(result.Steps, s => Assert.True(double.IsFinite(s.Loss)));
        Assert.Equal(ScalarType.Float64, result.Plan.Dtype);
    }

    [Fact]
    public void HugeLearningRate_StopsWithDivergenceNamingTheStep()
    {
        using var data = TinyData.Regression();
        var ex = Assert.Throws<TrainingDivergedException>(() => Train(data, lr: 1e6, epochs: 50));
        Assert.StartsWith($"training diverged at step {ex.Step} (epoch {ex.Epoch})", ex.Message);
        Assert.True(!double.IsFinite(ex.Loss) || ex.Loss > 1e4 * ex.Partial.Epochs[0].TrainLoss, $"loss {ex.Loss}");
        Assert.Equal(ex.Step, ex.Partial.Steps.Count);
    }

    [Fact]
    public void LrDecay_IsAppliedPerEpoch()
    {
        using var data = TinyData.Regression(train: 32);
        var trainer = new Trainer(new ModelSpec(),
            new OptimizerSettings { LearningRate = 0.1, LrDecay = LrSchedule.Exponential(0.5) },
            new TrainerOptions { Epochs = 3, BatchSize = 16 });
        var result = trainer.Run(data);
        Assert.Equal(new[] { 0.1, 0.1, 0.05, 0.05, 0.025, 0.025 }, result.Steps.Select(s => Math.Round(s.LearningRate, 12)));
        Assert.Equal(new[] { 0.1, 0.1, 0.05, 0.025 }, result.Epochs.Select(e => Math.Round(e.LearningRate, 12)));
    }

    [Fact]
    public void UnknownOptimizer_ListsAvailableNames()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new Trainer(new ModelSpec(), new OptimizerSettings { Name = "lbfgs" }, new TrainerOptions()));
        Assert.Equal("Name", ex.ParamName);
        Assert.StartsWith("Name must be one of adam, auto, block, diag, ekfac, exact, hf, kbfgs, kfac, ksd, sgd, tengrad", ex.Message);
        Assert.Contains("'lbfgs'", ex.Message);
    }

    private sealed class LiveCountProbe : ITrainingProgress
    {
        public List<long> Counts { get; } = new();
        public void OnStep(StepMetrics step) => Counts.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void LiveTensorCount_StaysFlatAcrossSteps(string optimizer)
    {
        using var data = TinyData.Regression(train: 64);
        var probe = new LiveCountProbe();
        Train(data, optimizer: optimizer, epochs: 4, batch: 8, progress: probe);   // 32 steps
        // Optimiser state (momentum, moments) is created in the first step; from then on nothing may accumulate.
        var steady = probe.Counts.Skip(2).ToList();
        Assert.True(steady.All(c => c == steady[0]), $"live tensors per step: {string.Join(",", probe.Counts)}");
    }
}
