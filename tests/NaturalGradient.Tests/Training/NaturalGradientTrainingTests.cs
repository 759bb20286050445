using NaturalGradient.Damping;
using NaturalGradient.Fisher;
using NaturalGradient.Optim;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Training;

/// <summary>Every natural-gradient method in the catalog through the trainer, in the float32 a user trains in.</summary>
[Collection("Torch")]
public class NaturalGradientTrainingTests
{
    public static TheoryData<string, FisherKind, string> Methods => new()
    {
        { "exact", FisherKind.Exact, "same" }, { "block", FisherKind.Empirical, "same" }, { "tengrad", FisherKind.MonteCarlo, "same" },
        { "diag", FisherKind.Exact, "same" }, { "kfac", FisherKind.MonteCarlo, "other" }, { "ekfac", FisherKind.Exact, "unlabeled" },
        { "hf", FisherKind.Exact, "same" },
    };

    private static TrainingResult Train(NaturalGradient.Training.Data.Dataset data, OptimizerSettings settings, ModelSpec? model = null, int epochs = 4) =>
        new Trainer(model ?? new ModelSpec { Hidden = new[] { 8 } }, settings,
            new TrainerOptions { Epochs = epochs, BatchSize = 16, Seed = 3, Dtype = ScalarType.Float32 }).Run(data);

    [Theory]
    [MemberData(nameof(Methods))]
    public void Method_TrainsInFloat32_AndLowersTheLoss(string name, FisherKind fisher, string metric)
    {
        using var data = TinyData.Classification();
        var settings = new OptimizerSettings
        {
            // Cross-entropy wants ~100× the damping of least squares (shared/notes/datasets.md); the KL bound keeps
            // early steps of the sampled/diagonal metrics from overshooting.
            Name = name, LearningRate = 0.3, Momentum = 0, Damping = 1e-1, KlClip = 1e-2, KlClipForm = KlClipForm.StepQuadraticForm, Fisher = fisher,
            MetricSource = metric switch { "other" => MetricSource.OtherBatch, "unlabeled" => MetricSource.Unlabeled, _ => MetricSource.SameBatch },
        };
        var result = Train(data, settings);
        double factor = name == "diag" ? 0.8 : 0.5;   // the diagonal metric is the weakest approximation
        Assert.True(result.Final.TrainLoss < factor * result.Epochs[0].TrainLoss, $"{name}: {result.Epochs[0].TrainLoss} → {result.Final.TrainLoss}");
        Assert.All(result.Steps, s => Assert.Equal(1e-1, s.Damping));
        Assert.All(result.Steps, s => Assert.True(s.PredictedKl <= 1e-2 * (1 + 1e-6), $"predicted KL {s.PredictedKl}"));
        if (name == "hf") Assert.All(result.Steps, s => Assert.True(s.SolverIterations > 0));
    }

    [Fact]
    public void Kfac_TrainsTheConvNet()
    {
        using var data = TinyData.Images();
        var result = Train(data, new OptimizerSettings { Name = "kfac", LearningRate = 0.1, Momentum = 0, Damping = 1e-1, KlClip = 1e-2, Fisher = FisherKind.MonteCarlo },
            new ModelSpec { Kind = ModelKind.Conv }, epochs: 3);
        Assert.True(result.Final.TrainLoss < result.Epochs[0].TrainLoss, $"{result.Epochs[0].TrainLoss} → {result.Final.TrainLoss}");
    }

    [Fact]
    public void UnlabeledMetric_WithEmpiricalFisher_IsRefusedNamingTheOption()
    {
        using var data = TinyData.Classification();
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Train(data,
            new OptimizerSettings { Name = "block", MetricSource = MetricSource.Unlabeled, Fisher = FisherKind.Empirical }));
        Assert.Equal(nameof(OptimizerSettings.MetricSource), ex.ParamName);
    }
}
