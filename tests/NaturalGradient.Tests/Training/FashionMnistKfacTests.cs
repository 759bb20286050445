using NaturalGradient.Training.Data;
using NaturalGradient.Fisher;
using NaturalGradient.Training.Models;
using NaturalGradient.Tests.Data;
using NaturalGradient.Training;
using TorchSharp;

namespace NaturalGradient.Tests.Training;

/// <summary>
/// K-FAC on real images (Fashion-MNIST from the Debian package). A reduced version of the benchmark
/// (full data, 2 epochs, ≥ 85%: see docs/REPRODUCTION.md) that fits in the test budget.
/// </summary>
[Collection("Torch")]
public class FashionMnistKfacTests
{
    [RequiresFashionMnistFact]
    public void Kfac_Mlp784_256_10_On10kImages_ReachesEightyPercentInTwoEpochs()
    {
        using var data = DatasetCatalog.Load("fashion-mnist", new DataOptions { MaxTrainExamples = 10_000, Seed = 0 });
        var result = new Trainer(
            new ModelSpec { Hidden = new[] { 256 }, Activation = Activation.Relu },
            new OptimizerSettings
            {
                Name = "kfac", LearningRate = 0.1, Momentum = 0.9, Damping = 1e-2, KlClip = 1e-3,
                Fisher = FisherKind.MonteCarlo, InverseUpdatePeriod = 20,
            },
            new TrainerOptions { Epochs = 2, BatchSize = 256, Seed = 0 }).Run(data);
        Assert.True(result.Final.TestAccuracy >= 0.80, $"test accuracy {result.Final.TestAccuracy:P1} after 2 epochs on 10k images");
    }
}
