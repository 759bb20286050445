using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// Cases where K-FAC is exact for any batch size. In a deep linear network with a Gaussian output the back-propagated
/// δ of output column c does not depend on the example, so the exact Fisher (GGN) block (1/m) Σᵢ Σ_c (δ_c ⊗ āᵢ)(δ_c ⊗ āᵢ)ᵀ
/// is G ⊗ A [curvlinops, kfac-jax]; for one Linear layer it is also the Hessian I ⊗ A, and one natural-gradient step
/// with η = 1 solves the least-squares problem.
/// </summary>
[Collection("Torch")]
public class KfacIdentityTests
{
    private const int M = 6;

    private static nn.Module<Tensor, Tensor> DeepLinear(params long[] sizes)
    {
        manual_seed(3);
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (int i = 0; i + 1 < sizes.Length; i++)
            layers.Add(($"fc{i}", nn.Linear(sizes[i], sizes[i + 1], dtype: ScalarType.Float64)));
        return nn.Sequential(layers);
    }

    /// <summary>(1/m) Σᵢ J_rᵢᵀ J_rᵢ (H_out = I for σ = 1) for one layer, by one backward pass per example and output.</summary>
    private static Tensor ExactGgnBlock(nn.Module<Tensor, Tensor> model, ILayerAdapter layer, Tensor x)
    {
        var rows = new List<Tensor>();
        for (long i = 0; i < x.shape[0]; i++)
        {
            var output = model.call(x.narrow(0, i, 1));
            for (long c = 0; c < output.shape[1]; c++)
            {
                model.zero_grad();
                output[0, c].backward(retain_graph: true);
                rows.Add(layer.GradientMatrix().reshape(-1));
            }
        }
        model.zero_grad();
        var j = stack(rows.ToArray());
        return j.t().mm(j).div(x.shape[0]);
    }

    [Theory]
    [InlineData("kfac-eigen-factored")]
    [InlineData("ekfac")]
    public void DeepLinearNetwork_GaussianExactFisher_KfacEqualsTheExactGgnBlock(string configuration)
    {
        using var scope = NewDisposeScope();
        var model = DeepLinear(3, 4, 5, 2);
        var x = TestModels.Inputs(M, 3);
        var (layers, statistics) = Collect(model, x, null, new GaussianLikelihood(), FisherKind.Exact);
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = CreateBlock(configuration, layers[l]);
            block.Update(statistics[l], 0);
            TensorAssert.Close(ExactGgnBlock(model, layers[l], x), block.ToDense(), rtol: 1e-10, label: $"layer {l}");
        }
    }

    [Theory]
    [InlineData("kfac-eigen-factored")]
    [InlineData("kfac-eigen-eigenbasis")]
    [InlineData("kfac-cholesky-factored")]
    [InlineData("ekfac")]
    public void LinearLeastSquares_OneNaturalGradientStepThroughBlockDiagonalCurvature_ReachesTheMinimum(string configuration)
    {
        using var scope = NewDisposeScope();
        var model = DeepLinear(4, 3);
        var scales = tensor(new[] { 10.0, 1.0, 0.1, 3.0 }, dtype: ScalarType.Float64);
        var x = TestModels.Inputs(20, 4, seed: 5) * scales;                           // badly scaled: a gradient step would crawl
        var y = TestModels.Inputs(20, 3, seed: 6);
        var likelihood = new GaussianLikelihood();
        using var capture = new LayerCapture(model);
        var adapter = capture.Layers[0].Adapter;
        using var curvature = new BlockDiagonalCurvature(layer => CreateBlock(configuration, layer));

        var output = model.call(x);
        var statistics = new FisherEstimator(likelihood, FisherKind.Exact).Collect(capture, capture.Recorded(), output, y);
        curvature.Update(new CurvatureBatch(statistics, likelihood, output, 0));
        likelihood.Loss(output, y).backward();
        // Factored damping shifts the factors by π√λ and √λ/π, so it needs a far smaller λ to be negligible.
        double damping = DampsExactly(configuration) ? 1e-10 : 1e-20;
        var delta = curvature.Precondition(new[] { adapter }, new[] { adapter.GradientMatrix() }, damping)[0];
        var stepped = adapter.WeightMatrix() - delta;

        var xBar = cat(new[] { x, ones(20, 1, dtype: ScalarType.Float64) }, 1);
        var leastSquares = linalg.lstsq(xBar, y).Solution.t();                          // out × in'
        TensorAssert.Close(leastSquares, stepped, rtol: 1e-6, label: configuration);
    }
}
