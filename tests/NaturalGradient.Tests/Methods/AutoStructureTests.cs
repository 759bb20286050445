using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Methods;

/// <summary>The per-layer structure choice follows the documented flop model, and each block behaves as its kind.</summary>
[Collection("Torch")]
public class AutoStructureTests
{
    // The model of docs/ALGORITHMS.md written out again: TENGraD (nT)²(in'+out) + n³/3 + 2nT·out·in';
    // K-FAC m T in'² + n T out² + c(in'³ + out³)/T_inv + 2(out² in' + out in'²), c = 9 (eigen) or 1 (Cholesky).
    private static double Tengrad(double n, double i, double o) => n * n * (i + o) + n * n * n / 3 + 2 * n * o * i;
    private static double Kfac(double m, double n, double t, double i, double o, double c = 9, double period = 1) =>
        m * t * i * i + n * t * o * o + c * (i * i * i + o * o * o) / period + 2 * (o * o * i + o * i * i);

    [Fact]
    public void CostModel_MatchesTheDocumentedFormulas()
    {
        Assert.Equal(Tengrad(64, 301, 10), StructureCostModel.TengradFlops(64, 1, 301, 10), 6);
        Assert.Equal(Kfac(64, 64, 1, 301, 10), StructureCostModel.KfacFlops(64, 64, 1, 301, 10), 6);
        Assert.Equal(128.0 * 128 * 14 + 8.0 * 8 * 8 / 3 + 2 * 128.0 * 4 * 10, StructureCostModel.TengradGramFlops(8, 16, 10, 4), 6);   // T = 16 positions
        // The parameter side, p = 40: nT·p + n p² + p³/3, fewer here, so it is TENGraD's price.
        double parameterSide = 8.0 * 16 * 40 + 8.0 * 40 * 40 + 40.0 * 40 * 40 / 3;
        Assert.Equal(parameterSide, StructureCostModel.TengradParameterSpaceFlops(8, 16, 10, 4), 6);
        Assert.Equal(parameterSide, StructureCostModel.TengradFlops(8, 16, 10, 4), 6);
        Assert.Equal(LayerStructure.Kfac, StructureCostModel.Choose("conv", 8, 8, 16, 10, 4).Choice);
        // Cholesky inverses every 10 steps: c = 1, divided by 10.
        double cholesky = 64 * 301.0 * 301 + 64 * 100.0 + (301.0 * 301 * 301 + 1000) / 10 + 2 * (100.0 * 301 + 10 * 301.0 * 301);
        Assert.Equal(cholesky, StructureCostModel.KfacFlops(64, 64, 1, 301, 10, KfacInverseMethod.Cholesky, 10), 6);
    }

    [Fact]
    public void WideLayerGetsTengrad_NarrowLayerGetsKfac_AsTheModelSays_AndEachBlockActsAsItsKind()
    {
        using var _ = NewDisposeScope();
        const int m = 64;
        const double lambda = 1e-2;
        var model = TestModels.Mlp(new[] { 300, 10, 5 }, seed: 4);
        var x = TestModels.Inputs(m, 300, seed: 5);
        manual_seed(6);
        var labels = randint(0, 5, new long[] { m });
        using var pre = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Auto, Damping = lambda });
        var auto = (AutoCurvature)pre.Curvature;
        var logged = new List<string>();
        auto.Chosen += c => logged.Add(c.ToString());
        pre.Backward(model.call(x), labels);

        Assert.Equal(2, auto.Choices.Count);
        Assert.Equal(2, logged.Count);
        foreach (var (choice, (i, o)) in auto.Choices.Zip(new[] { (301L, 10L), (11L, 5L) }))
        {
            var defaults = new KfacOptions();
            double c = defaults.InverseMethod == KfacInverseMethod.Eigen ? 9 : 1;
            var expected = Tengrad(m, i, o) <= Kfac(m, m, 1, i, o, c, defaults.InverseUpdatePeriod ?? KfacOptions.DefaultInverseUpdatePeriod) ? LayerStructure.Tengrad : LayerStructure.Kfac;
            Assert.Equal(expected, choice.Choice);
            Assert.Equal(m, choice.Samples);
            Assert.Equal((i, o), (choice.InputDim, choice.OutputDim));
        }
        Assert.Equal(LayerStructure.Tengrad, auto.Choices[0].Choice);      // n = 64 ≪ in' = 301
        Assert.Equal(LayerStructure.Kfac, auto.Choices[1].Choice);         // n = 64 ≫ in' = 11, out = 5
        Assert.StartsWith("fc0: tengrad", logged[0]);

        // Each block gives what its kind gives on the same statistics.
        var g = pre.GradientMatrices();
        var delta = pre.Solve(g, lambda);
        Assert.IsType<TengradBlock>(auto.Block("fc0").Inner);
        Assert.IsType<KfacBlock>(auto.Block("fc1").Inner);
        var dense = auto.Block("fc0").ToDense();
        var exact = linalg.solve(dense + lambda * eye(dense.shape[0], dtype: dense.dtype), g[0].flatten());
        TensorAssert.Close(exact, delta[0].flatten(), rtol: 1e-7, label: "TENGraD block = exact damped block solve");
        var kfac = (KfacBlock)auto.Block("fc1").Inner!;
        TensorAssert.Close(kfac.Precondition(g[1], lambda), delta[1], rtol: 1e-12, label: "K-FAC block");
    }

    [Fact]
    public void Trainer_Auto_LogsItsChoices_AndLowersTheLoss()
    {
        using var data = TinyData.Classification();
        var notes = new List<string>();
        var result = new NaturalGradient.Training.Trainer(new NaturalGradient.Training.Models.ModelSpec { Hidden = new[] { 8 } },
            new NaturalGradient.Training.OptimizerSettings { Name = "auto", LearningRate = 0.3, Momentum = 0, Damping = 1e-1, KlClip = 1e-2 },
            new NaturalGradient.Training.TrainerOptions { Epochs = 4, BatchSize = 16, Seed = 3, Dtype = ScalarType.Float32 }).Run(data, new Notes(notes));
        Assert.True(result.Final.TrainLoss < 0.5 * result.Epochs[0].TrainLoss, $"{result.Epochs[0].TrainLoss} → {result.Final.TrainLoss}");
        Assert.Equal(2, notes.Count);
        Assert.All(notes, n => Assert.StartsWith("auto: ", n));
    }

    private sealed class Notes(List<string> notes) : NaturalGradient.Training.ITrainingProgress
    {
        public void OnNote(string note) => notes.Add(note);
    }
}
