using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Methods;

/// <summary>
/// TENGraD on a layer whose parameter side is cheaper than its Gram side (a small output head): the block solves
/// (w JᵀJ + λI)Δ = g with a p × p Cholesky. Every operation is checked in float64 against the dense block built from
/// single-example backward passes (J by a loop, B = (1/m) JᵀJ, direct solves), the centred form against the centred J,
/// and a <see cref="NaturalGradientDescent"/> step against −η (B_l + λI)⁻¹ ḡ_l per layer.
/// </summary>
[Collection("Torch")]
public class TengradParameterSpaceTests
{
    private const double Damping = 0.03;

    /// <summary>A 30-8-1 tanh regression net on m examples (float64): the 31 × 8 layer takes the Gram side, the 9 × 1 head the parameter side.</summary>
    private static (Module<Tensor, Tensor> Model, Tensor X, Tensor Y, GaussianLikelihood Likelihood) HeadProblem(long m)
    {
        var model = TestModels.Mlp(new[] { 30, 8, 1 }, seed: 3);
        var x = TestModels.Inputs(m, 30, seed: 4);
        manual_seed(5);
        var y = randn(m, 1, dtype: ScalarType.Float64);
        return (model, x, y, new GaussianLikelihood());
    }

    [Fact]
    public void Choice_FollowsTheCostModel_HeadInParameterSpace_WideLayerAndCheapGramOnTheGramSide()
    {
        using var scope = NewDisposeScope();
        var (model, x, y, likelihood) = HeadProblem(64);
        var (_, statistics) = Collect(model, x, y, likelihood);
        Assert.False(TengradBlock.SolvesInParameterSpace(statistics[0]));   // 248 parameters: n p² ≫ n²(in' + out)
        Assert.True(TengradBlock.SolvesInParameterSpace(statistics[1]));    // 9 parameters
        // p = 27 < n = 32, yet the Gram side is cheaper (in' + out = 12): 1.2e4 + 1.1e4 + 1.7e3 = 2.5e4 multiply-adds
        // against 8.6e2 + 2.3e4 + 6.6e3 = 3.1e4.
        var small = TestModels.Mlp(new[] { 4, 8, 3 }, seed: 6);
        var (_, smallStatistics) = Collect(small, TestModels.Inputs(32, 4, seed: 7), Labels(32, 3, seed: 8), new CategoricalLikelihood());
        Assert.True(StructureCostModel.TengradGramFlops(32, 1, 9, 3) < StructureCostModel.TengradParameterSpaceFlops(32, 1, 9, 3));
        Assert.False(TengradBlock.SolvesInParameterSpace(smallStatistics[1]));
    }

    [Theory]
    [InlineData(MetricForm.Uncentered)]
    [InlineData(MetricForm.Centered)]
    public void EveryOperation_EqualsTheDenseBlockFromPerExampleGradients(MetricForm form)
    {
        using var scope = NewDisposeScope();
        const long m = 64;
        var (model, x, y, likelihood) = HeadProblem(m);
        var (layers, statistics) = Collect(model, x, y, likelihood);
        var j = BruteForce.PerExampleGradients(model, layers, x, likelihood.PerExampleLoss, y)[1].reshape(m, -1);
        var mean = j.mean(new long[] { 0 });
        var jc = form == MetricForm.Centered ? j - mean : j;
        var dense = jc.t().mm(jc).div(m);
        var damped = dense + Damping * eye(dense.shape[0], dtype: ScalarType.Float64);

        using var block = new TengradBlock(form);
        long solves = TengradBlock.ParameterSpaceSolves, factorizations = TengradBlock.PushThroughFactorizations;
        block.Update(statistics[1], 0);
        TensorAssert.Close(dense, block.ToDense(), rtol: 1e-12, label: "B");
        Assert.Equal(dense.trace().item<double>() / dense.shape[0], block.MeanCurvature(), 1e-12);

        var g = RandomMatrix(layers[1], seed: 9);
        TensorAssert.Close(linalg.solve(damped, g.flatten()).reshape(g.shape), block.Precondition(g, Damping), rtol: 1e-10, label: "(B + λI)⁻¹ g");
        TensorAssert.Close(dense.mv(g.flatten()).reshape(g.shape), block.Multiply(g), rtol: 1e-12, label: "B v");
        Assert.Equal(g.flatten().dot(dense.mv(g.flatten())).item<double>(), block.QuadraticForm(g).item<double>(), 1e-10);

        // The mean-gradient route: ḡ = (1/m) Jᵀ1 of the uncentred rows, whatever the form.
        var routed = block.PreconditionMeanGradient(statistics[1], Damping, innerProduct: true);
        Assert.NotNull(routed);
        var expected = linalg.solve(damped, mean);
        TensorAssert.Close(expected.reshape(g.shape), routed!.Value.Direction, rtol: 1e-10, label: "(B + λI)⁻¹ ḡ");
        Assert.Equal(mean.dot(expected).item<double>(), routed.Value.GradientInnerProduct!.item<double>(), 1e-10);
        Assert.Equal(2, TengradBlock.ParameterSpaceSolves - solves);
        Assert.Equal(0, TengradBlock.PushThroughFactorizations - factorizations);
    }

    /// <summary>
    /// <see cref="NaturalGradientDescent.Step"/> (momentum 0, constant λ) moves each layer by −η (B_l + λI)⁻¹ ḡ_l, the
    /// hidden layer through the Gram and the head in parameter space: both against the dense blocks.
    /// </summary>
    [Fact]
    public void Step_MovesEachLayerByTheDenseSolve()
    {
        using var scope = NewDisposeScope();
        const long m = 64;
        const double lr = 0.1;
        var (model, x, y, likelihood) = HeadProblem(m);
        using var ngd = new NaturalGradientDescent(model, likelihood, new NaturalGradientOptions
        {
            LearningRate = lr, Momentum = 0,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = Damping },
        });
        var layers = ngd.Preconditioner.Layers;
        var perExample = BruteForce.PerExampleGradients(model, layers, x, likelihood.PerExampleLoss, y);
        var before = layers.Select(l => l.WeightMatrix().detach().clone()).ToList();
        long solves = TengradBlock.ParameterSpaceSolves;
        Assert.True(ngd.Step(x, y).Applied);
        Assert.Equal(1, TengradBlock.ParameterSpaceSolves - solves);
        for (int l = 0; l < layers.Count; l++)
        {
            var j = perExample[l].reshape(m, -1);
            var dense = j.t().mm(j).div(m) + Damping * eye(j.shape[1], dtype: ScalarType.Float64);
            var delta = linalg.solve(dense, j.mean(new long[] { 0 })).reshape(before[l].shape);
            TensorAssert.Close(before[l] - lr * delta, layers[l].WeightMatrix(), rtol: 1e-10, label: layers[l].Name);
        }
    }
}
