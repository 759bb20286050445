using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// The mean-gradient route of K-FAC and EKFAC: for ḡ = w DᵀĀ, the products L ḡ R are formed as w (D Lᵀ)ᵀ(Ā R) when the
/// batch is small against the layer. Checked in float64 against <see cref="ICurvatureBlock.Precondition"/> of the
/// gradient autograd gives for the batch's mean loss.
/// </summary>
[Collection("Torch")]
public class KfacMeanGradientTests
{
    private const int M = 4;
    private const double Damping = 0.03;

    private static (List<ILayerAdapter> Layers, IReadOnlyList<LayerStatistics> Statistics, List<Tensor> Gradients) Problem() => WideAndNarrowLayers(M);

    [Theory]
    [MemberData(nameof(ConfigurationData))]
    public void MeanGradientRoute_EqualsPreconditionOfTheLossGradient(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = Problem();
        Assert.True(KroneckerFactors.MeanGradientRouteIsCheaper(M, layers[0].OutputDim, layers[0].InputDim));
        Assert.False(KroneckerFactors.MeanGradientRouteIsCheaper(M, layers[1].OutputDim, layers[1].InputDim));
        using var block = CreateBlock(configuration, layers[0], new KfacOptions { FactorDecay = 0.5 });
        block.Update(statistics[0], 0);
        var expected = block.Precondition(gradients[0], Damping);
        var actual = block.PreconditionMeanGradient(statistics[0], Damping);
        Assert.NotNull(actual);
        TensorAssert.Close(expected, actual!, rtol: 1e-10, label: configuration);
        // The gradient the route stands for is autograd's: w DᵀĀ.
        TensorAssert.Close(gradients[0], statistics[0].PerSampleGradients().sum(new long[] { 0 }).mul(statistics[0].Weight), rtol: 1e-12, label: "ḡ");
    }

    /// <summary>K-FAC's 3 × 41 layer at m = 4: 4(9 + 1681 + 123) flops against 3·41·44, the route is not taken.</summary>
    [Theory]
    [InlineData("kfac-eigen-factored")]
    [InlineData("kfac-eigen-eigenbasis")]
    [InlineData("kfac-cholesky-factored")]
    public void MeanGradientRoute_IsNotTakenWhenItCostsMore(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, _) = Problem();
        using var block = CreateBlock(configuration, layers[1]);
        block.Update(statistics[1], 0);
        Assert.Null(block.PreconditionMeanGradient(statistics[1], Damping));
    }

    /// <summary>EKFAC with its update's projections needs 2m·out·in' flops, cheaper for m &lt; out + in': taken on the 3 × 41 layer too.</summary>
    [Fact]
    public void Ekfac_MeanGradientRoute_WithItsUpdatesProjections_IsTakenOnTheSmallLayer()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = Problem();
        using var block = new EkfacBlock(layers[1], new KfacOptions { FactorDecay = 0.5 });
        block.Update(statistics[1], 0);
        TensorAssert.Close(block.Precondition(gradients[1], Damping), block.PreconditionMeanGradient(statistics[1], Damping)!, rtol: 1e-10, label: "3 × 41");
    }

    /// <summary>EKFAC without the projections of its own update (other statistics object) forms them from D and Ā.</summary>
    [Fact]
    public void Ekfac_MeanGradientRoute_WithoutCachedProjections_EqualsPrecondition()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = Problem();
        using var block = new EkfacBlock(layers[0], new KfacOptions { FactorDecay = 0.5, InverseUpdatePeriod = 100 });
        block.Update(statistics[0], 0);
        block.Update(statistics[0], 1);
        var copy = new LayerStatistics(statistics[0].Adapter, statistics[0].Activations, statistics[0].OutputGradients, statistics[0].Weight);
        TensorAssert.Close(block.Precondition(gradients[0], Damping), block.PreconditionMeanGradient(copy, Damping)!, rtol: 1e-10, label: "uncached");
    }

    /// <summary>NaturalGradientDescent takes the route (no weight decay, one process) and steps exactly as the preconditioner path.</summary>
    [Theory]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Ekfac)]
    public void NaturalGradientDescent_WithTheRoute_StepsAsThePreconditionerPath(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var likelihood = new CategoricalLikelihood();
        var options = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Empirical, Damping = Damping, Kfac = new KfacOptions { FactorUpdatePeriod = 1, InverseUpdatePeriod = 2 } };
        var a = TestModels.Mlp(new[] { 30, 40, 3 }, seed: 9);
        var b = TestModels.Mlp(new[] { 30, 40, 3 }, seed: 9);
        using var ngd = new NaturalGradientDescent(a, likelihood, new NaturalGradientOptions { LearningRate = 0.1, Momentum = 0, Preconditioner = options });
        using var pre = new NaturalGradientPreconditioner(b, likelihood, options);
        var sgd = optim.SGD(b.parameters(), 0.1);
        long before = KroneckerFactors.MeanGradientSolves;
        for (int s = 0; s < 3; s++)
        {
            using var step = NewDisposeScope();
            var x = TestModels.Inputs(M, 30, seed: 20 + s);
            var y = Labels(M, 3, seed: 30 + s);
            Assert.True(ngd.Step(x, y).Applied);
            sgd.zero_grad();
            pre.Backward(b.call(x), y);
            Assert.True(pre.Precondition().Applied);
            sgd.step();
        }
        // K-FAC: the 40 × 31 layer on each step; EKFAC: both layers; the preconditioner path never.
        Assert.Equal(structure == CurvatureStructure.Kfac ? 3 : 6, KroneckerFactors.MeanGradientSolves - before);
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
            TensorAssert.Close(pb, pa, rtol: 1e-10, label: structure.ToString());
    }

    public static IEnumerable<object[]> ConfigurationData() => Configurations.Select(c => new object[] { c });
}
