using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// <see cref="LayerStatistics.GradientSum(double)"/> scales the smallest operand (D, Ā or the product) instead of the
/// out × in' result. With the empirical statistics of the mean loss, w · Σ gᵢ is autograd's gradient: checked in float64
/// for each branch — D scaled (3 × 41 at m = 4), Ā scaled (40 × 31 at m = 4), the product scaled (3 × 41 at m = 64) —
/// and for an Embedding (token rows) and a LayerNorm (per-sample gradients).
/// </summary>
[Collection("Torch")]
public class GradientSumScaleTests
{
    [Theory]
    [InlineData(4)]
    [InlineData(64)]
    public void LinearLayers_ScaledSumIsAutogradsGradient(int m)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = WideAndNarrowLayers(m);
        for (int l = 0; l < layers.Count; l++)
        {
            TensorAssert.Close(gradients[l], statistics[l].GradientSum(statistics[l].Weight), rtol: 1e-12, label: $"m = {m}, layer {l}");
            TensorAssert.Close(statistics[l].GradientSum().mul(statistics[l].Weight), statistics[l].GradientSum(statistics[l].Weight), rtol: 1e-14, label: "scale after");
        }
    }

    [Fact]
    public void EmbeddingAndLayerNorm_ScaledSumIsAutogradsGradient()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var model = Sequential(
            ("emb", Embedding(10, 4, dtype: ScalarType.Float64)),
            ("flat", Flatten()),
            ("fc0", Linear(12, 8, dtype: ScalarType.Float64)),
            ("ln", LayerNorm(new long[] { 8 }, dtype: ScalarType.Float64)),
            ("act", Tanh()),
            ("fc1", Linear(8, 3, dtype: ScalarType.Float64)));
        var x = randint(0, 10, new long[] { 6, 3 }, dtype: ScalarType.Int64);
        var y = Labels(6, 3, seed: 7);
        var likelihood = new CategoricalLikelihood();
        var (layers, statistics) = Collect(model, x, y, likelihood);
        model.zero_grad();
        likelihood.Loss(model.call(x), y).backward();
        Assert.Contains(statistics, s => s.Tokens is not null);
        Assert.Contains(statistics, s => !s.Adapter.IsKronecker);
        for (int l = 0; l < layers.Count; l++)
            TensorAssert.Close(layers[l].GradientMatrix(), statistics[l].GradientSum(statistics[l].Weight), rtol: 1e-12, label: layers[l].Name);
    }
}
