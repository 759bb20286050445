using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// TENGraD's Grams formed together for the layers whose rows share a shape (<see cref="BlockDiagonalCurvature.Update"/>):
/// every block ends with the curvature a block updated alone has — its dense w JᵀJ equal to the explicit per-example
/// Jacobian's in float64 — and solves as a block updated alone solves, on both the mean-gradient route and the general
/// solve, uncentred and centred.
/// </summary>
[Collection("Torch")]
public class TengradGramBatchTests
{
    private const double Damping = 0.03;

    /// <summary>
    /// The MLP of <paramref name="sizes"/> on 128 examples: the layers of one row shape (in', out) are all batched
    /// (40-40-40-40: three), a run of them (40-40-40-3: two) or scattered among other shapes (40-40-40-5-40-40-3: three,
    /// at positions 0, 1 and 4); layers of a shape of their own form their Gram alone. The 41 × 40 layers are above
    /// <see cref="NaturalGradient.Numerics.RowGram"/>'s limit (128² · 81 multiply-adds), so they take the batched GEMMs;
    /// smaller layers (8-8-8-8) form their Grams one by one on the calling thread, none batched.
    /// </summary>
    [Theory]
    [InlineData(new[] { 40, 40, 40, 40 }, 3)]
    [InlineData(new[] { 40, 40, 40, 3 }, 2)]
    [InlineData(new[] { 40, 40, 40, 5, 40, 40, 3 }, 3)]
    [InlineData(new[] { 8, 8, 8, 8 }, 0)]
    public void GramsFormedTogether_EqualTheExplicitJacobiansAndTheSingleBlocks(int[] sizes, int batchedLayers)
    {
        foreach (var form in new[] { MetricForm.Uncentered, MetricForm.Centered })
        {
            using var scope = NewDisposeScope();
            var (layers, statistics, gradients) = MlpProblem(sizes, m: 128, inputSeed: 11, labelSeed: 12);

            long before = TengradBlock.BatchedGrams;
            using var curvature = new BlockDiagonalCurvature(_ => new TengradBlock(form));
            curvature.Update(new CurvatureBatch(statistics, null!, null!, 0));
            Assert.Equal(batchedLayers, TengradBlock.BatchedGrams - before);

            var general = curvature.Precondition(layers, gradients, Damping);
            var routed = form == MetricForm.Uncentered ? curvature.PreconditionMeanGradient(layers, gradients, statistics, Damping) : null;
            for (int l = 0; l < layers.Count; l++)
            {
                var block = curvature.Block(layers[l].Name);
                TensorAssert.Close(ExplicitFisher(statistics[l], form), block.ToDense(), rtol: 1e-12, label: $"{form} {layers[l].Name}");
                using var single = new TengradBlock(form);
                single.Update(statistics[l], 0);
                TensorAssert.Close(single.Precondition(gradients[l], Damping), general[l], rtol: 1e-11, label: $"{form} {layers[l].Name}");
                if (routed is not null)
                    TensorAssert.Close(single.PreconditionMeanGradient(statistics[l], Damping)!, routed[l], rtol: 1e-12, label: layers[l].Name);
            }
        }
    }

    /// <summary>
    /// w JᵀJ from the explicit per-example Jacobian rows J_i = vec(d_i ā_iᵀ) (rows centred for the centred form), by a
    /// loop over the examples: the reference no Gram takes part in.
    /// </summary>
    private static Tensor ExplicitFisher(LayerStatistics statistics, MetricForm form)
    {
        var a = statistics.PairedActivationRows();
        var d = statistics.OutputGradientRows();
        long n = a.size(0);
        var rows = stack(Enumerable.Range(0, (int)n).Select(i => d[i].outer(a[i]).flatten()).ToArray());
        if (form == MetricForm.Centered) rows = rows - rows.mean(new long[] { 0 }, keepdim: true);
        return rows.t().mm(rows).mul(statistics.Weight);
    }

    /// <summary>
    /// A second update on statistics of the same shapes forms new Grams (none of the first step's is used again), and
    /// a block updated alone after being batched (<see cref="TengradBlock.Update"/>) solves with its own Gram.
    /// </summary>
    [Fact]
    public void LaterUpdates_ReplaceTheBatch()
    {
        using var scope = NewDisposeScope();
        int[] sizes = { 40, 40, 40, 40 };
        var model = TestModels.Mlp(sizes);
        var likelihood = new NaturalGradient.Likelihoods.CategoricalLikelihood();
        using var curvature = new BlockDiagonalCurvature(_ => new TengradBlock());
        IReadOnlyList<LayerStatistics> statistics = Array.Empty<LayerStatistics>();
        List<NaturalGradient.Capture.ILayerAdapter> layers = new();
        List<Tensor> gradients = new();
        for (int step = 0; step < 2; step++)
        {
            var x = TestModels.Inputs(128, sizes[0], seed: 20 + step);
            var y = Labels(128, sizes[^1], seed: 30 + step);
            (layers, statistics) = Collect(model, x, y, likelihood);
            model.zero_grad();
            likelihood.Loss(model.call(x), y).backward();
            gradients = layers.Select(l => l.GradientMatrix()).ToList();
            curvature.Update(new CurvatureBatch(statistics, null!, null!, step));
        }
        var middle = (TengradBlock)curvature.Block(layers[1].Name);
        middle.Update(statistics[1], 2);
        var delta = curvature.PreconditionMeanGradient(layers, gradients, statistics, Damping);
        for (int l = 0; l < layers.Count; l++)
        {
            TensorAssert.Close(ExplicitFisher(statistics[l], MetricForm.Uncentered), curvature.Block(layers[l].Name).ToDense(), rtol: 1e-12, label: layers[l].Name);
            using var single = new TengradBlock();
            single.Update(statistics[l], 0);
            TensorAssert.Close(single.PreconditionMeanGradient(statistics[l], Damping)!, delta[l], rtol: 1e-12, label: layers[l].Name);
        }
    }
}
