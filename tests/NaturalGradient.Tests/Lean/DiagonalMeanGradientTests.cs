using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// The diagonal block's mean-gradient route, Δ = (w D)ᵀĀ ⊘ (diag + λ): checked in float64 against Δ from per-example
/// gradients of a backward loop (diag = (1/m) Σᵢ gᵢ ∘ gᵢ, ḡ = (1/m) Σᵢ gᵢ, divided element by element), its ⟨Δ, ḡ⟩
/// against ḡᵀ(diag + λ)⁻¹ḡ, the route declined where it does not apply, and NaturalGradientDescent's diagonal step
/// (which takes the route) against the preconditioner path (which solves .grad).
/// </summary>
[Collection("Torch")]
public class DiagonalMeanGradientTests
{
    private const double Damping = 0.03;

    /// <param name="m">Batch size.</param>
    /// <param name="diagonalFirst">Read the undamped diagonal before the route (as per-layer damping does), so that the
    /// damped diagonal is copied from it rather than formed from the rows.</param>
    [Theory]
    [InlineData(4, false)]
    [InlineData(9, false)]
    [InlineData(9, true)]
    public void Route_EqualsTheElementwiseSolveOfPerExampleGradients(int m, bool diagonalFirst)
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 30, 40, 3 }, seed: 2);
        var likelihood = new CategoricalLikelihood();
        var x = TestModels.Inputs(m, 30, seed: 4);
        var y = Labels(m, 3, seed: 5);
        var (layers, statistics) = Collect(model, x, y, likelihood);
        var perExample = BruteForce.PerExampleGradients(model, layers, x,
            (o, t) => nn.functional.cross_entropy(o, t, reduction: nn.Reduction.None), y);
        for (int l = 0; l < layers.Count; l++)
        {
            var block = new DiagonalBlock();
            block.Update(statistics[l], 0);
            var meanGradient = perExample[l].mean(new long[] { 0 });
            var diagonal = perExample[l].square().mean(new long[] { 0 });
            var expected = meanGradient / (diagonal + Damping);
            if (diagonalFirst) Assert.Equal(diagonal.mean().item<double>(), block.MeanCurvature(), 1e-12);
            long before = DiagonalBlock.MeanGradientSolves;
            var routed = ((ICurvatureBlock)block).PreconditionMeanGradient(statistics[l], Damping, innerProduct: true);
            Assert.NotNull(routed);
            Assert.Equal(1, DiagonalBlock.MeanGradientSolves - before);
            TensorAssert.Close(expected, routed!.Value.Direction, rtol: 1e-10, label: $"layer {l}");
            double inner = routed.Value.GradientInnerProduct!.item<double>();
            double quadratic = meanGradient.square().div(diagonal + Damping).sum().item<double>();
            Assert.Equal(quadratic, inner, 1e-10 * Math.Abs(quadratic));
            Assert.Null(((ICurvatureBlock)block).PreconditionMeanGradient(statistics[l], Damping, innerProduct: false)!.Value.GradientInnerProduct);
            TensorAssert.Close(diagonal, block.Multiply(torch.ones_like(diagonal)), rtol: 1e-12, label: $"diagonal of layer {l}");
        }
    }

    /// <summary>
    /// A rank-one layer's damped diagonal is written into storage kept from one update to the next (no out × in' tensor
    /// made per step), and the undamped diagonal is formed only when read, into storage kept too; the second batch's
    /// route and diagonal still equal those of a fresh block, which equal the brute-force solve of the first test.
    /// </summary>
    [Fact]
    public void Buffers_AreKeptAcrossUpdates_AndTheSecondBatchEqualsAFreshBlock()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 30, 40, 3 }, seed: 2);
        var likelihood = new CategoricalLikelihood();
        var (_, first) = Collect(model, TestModels.Inputs(7, 30, seed: 4), Labels(7, 3, seed: 5), likelihood);
        var (_, second) = Collect(model, TestModels.Inputs(7, 30, seed: 6), Labels(7, 3, seed: 7), likelihood);
        using var block = new DiagonalBlock();
        block.Update(first[0], 0);
        block.PreconditionMeanGradient(first[0], Damping);
        Assert.Null(block.DiagonalBuffer);   // the route formed diag + λ alone
        var damped = block.DampedBuffer!;
        Assert.Equal(new long[] { 40, 31 }, damped.shape);
        block.MeanCurvature();
        var diagonal = block.DiagonalBuffer!;
        Assert.Equal(new long[] { 40, 31 }, diagonal.shape);

        block.Update(second[0], 1);
        var routed = block.PreconditionMeanGradient(second[0], Damping)!;
        Assert.Same(damped, block.DampedBuffer);
        using var fresh = new DiagonalBlock();
        fresh.Update(second[0], 0);
        TensorAssert.Close(fresh.PreconditionMeanGradient(second[0], Damping)!, routed, rtol: 1e-14, label: "route");
        var ones = torch.ones(40, 31, dtype: ScalarType.Float64);
        TensorAssert.Close(fresh.Multiply(ones), block.Multiply(ones), rtol: 1e-14, label: "diagonal");
        Assert.Same(diagonal, block.DiagonalBuffer);

        block.Dispose();
        Assert.Null(block.DiagonalBuffer);
        Assert.Null(block.DampedBuffer);
    }

    /// <summary>Monte-Carlo statistics with two samples per example and a conv layer's positions: no route (the caller solves ḡ).</summary>
    [Fact]
    public void Route_IsDeclined_ForSeveralSamplesOrPositions()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 30, 40, 3 }, seed: 2);
        var likelihood = new CategoricalLikelihood();
        var x = TestModels.Inputs(6, 30, seed: 4);
        var (_, sampled) = Collect(model, x, null, likelihood, FisherKind.MonteCarlo, samples: 2);
        var block = new DiagonalBlock();
        block.Update(sampled[0], 0);
        Assert.Null(block.PreconditionMeanGradient(sampled[0], Damping));

        var net = CreateConvNet(new ConvShape(2, 3, 3, 1, 1, 1, true, 5));
        var (_, convStatistics) = Collect(net.Model, Images(4, net.Shape), Labels(4, 3), likelihood);
        var convBlock = new DiagonalBlock();
        convBlock.Update(convStatistics[0], 0);
        Assert.Null(convBlock.PreconditionMeanGradient(convStatistics[0], Damping));
    }

    /// <summary>
    /// NaturalGradientDescent with the diagonal (empirical Fisher of its own backward, no weight decay, one process) takes
    /// the route on every layer and steps as the preconditioner path, which solves .grad, with momentum.
    /// </summary>
    [Fact]
    public void NaturalGradientDescent_TakesTheRoute_AndStepsAsThePreconditionerPath()
    {
        using var scope = NewDisposeScope();
        var options = new PreconditionerOptions { Structure = CurvatureStructure.Diagonal, Fisher = FisherKind.Empirical, Damping = 1e-3 };
        long before = DiagonalBlock.MeanGradientSolves;
        PathTwins.AssertOptimizerStepsAsPreconditionerPath(options, momentum: 0.9, label: "diagonal");
        Assert.Equal(3 * 2, DiagonalBlock.MeanGradientSolves - before);
    }
}
