using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// <see cref="BlockDiagonalCurvature"/> gathers its K-FAC and EKFAC blocks' factorisations (eigendecompositions in the
/// update, Cholesky inverses before a solve) and runs them side by side: the directions and refresh counts equal those
/// of the same blocks updated and solved one at a time (whose factorisations, smaller than the side-by-side minimum,
/// run on the caller with two torch threads: equal to LAPACK's round-off), over refreshes, factor periods and a change
/// of λ, and a block that throws leaves the blocks before it updated.
/// </summary>
[Collection("Torch")]
public class SideBySideFactorizationTests
{
    private const int M = 300;

    /// <summary>Factors of 257, 200, 201, 180, 181 and 4: Σ d³ above FactorizationQueue.MinimumSideBySideCost, full rank at m = 300.</summary>
    private static readonly int[] Widths = { 256, 200, 180, 4 };

    private static double FactorCost() =>
        Enumerable.Range(0, Widths.Length - 1).Sum(l => Math.Pow(Widths[l] + 1, 3) + Math.Pow(Widths[l + 1], 3));

    private static IReadOnlyList<LayerStatistics> Batch(Module<Tensor, Tensor> model, long seed, out List<ILayerAdapter> layers)
    {
        var (l, stats) = Collect(model, TestModels.Inputs(M, Widths[0], seed) * (1 + 0.1 * seed), Labels(M, Widths[^1], seed + 100), new CategoricalLikelihood());
        layers = l;
        return stats;
    }

    public static TheoryData<string> AllConfigurations() => new(Configurations);

    [Theory]
    [MemberData(nameof(AllConfigurations))]
    public void Curvature_EqualsBlocksOneAtATime_OverRefreshesAndDampingChanges(string configuration)
    {
        Assert.True(FactorCost() >= NaturalGradient.Numerics.FactorizationQueue.MinimumSideBySideCost);
        using var scope = NewDisposeScope();
        int before = torch.get_num_threads();
        torch.set_num_threads(2);
        try
        {
            var options = new KfacOptions { FactorUpdatePeriod = 2, InverseUpdatePeriod = 3 };
            var model = TestModels.Mlp(Widths);
            using var curvature = new BlockDiagonalCurvature(layer => CreateBlock(configuration, layer, options));
            var alone = new Dictionary<string, ICurvatureBlock>();
            try
            {
                double[] dampings = { 0.05, 0.05, 0.08, 0.08, 0.02, 0.02, 0.02 };
                for (int step = 0; step < dampings.Length; step++)
                {
                    var stats = Batch(model, step + 1, out var layers);
                    curvature.Update(new CurvatureBatch(stats, new CategoricalLikelihood(), null, step));
                    foreach (var s in stats)
                    {
                        if (!alone.TryGetValue(s.Adapter.Name, out var block)) alone[s.Adapter.Name] = block = CreateBlock(configuration, s.Adapter, options);
                        block.Update(s, step);
                    }
                    var gradients = layers.Select((l, i) => RandomMatrix(l, 1000 * step + i)).ToList();
                    var together = curvature.Precondition(layers, gradients, dampings[step]);
                    var routed = curvature.PreconditionMeanGradient(layers, gradients, stats, dampings[step]);
                    for (int i = 0; i < layers.Count; i++)
                    {
                        var block = alone[layers[i].Name];
                        TensorAssert.Close(block.Precondition(gradients[i], dampings[step]), together[i], rtol: 1e-9, atol: 1e-13, label: $"step {step}, layer {i}");
                        var expected = block.PreconditionMeanGradient(stats[i], dampings[step]) ?? block.Precondition(gradients[i], dampings[step]);
                        TensorAssert.Close(expected, routed[i], rtol: 1e-9, atol: 1e-13, label: $"route, step {step}, layer {i}");
                        Assert.Equal(RefreshCount(block), RefreshCount(curvature.Block(layers[i].Name)));
                    }
                }
                Assert.All(alone.Values, b => Assert.True(RefreshCount(b) >= 3, $"{configuration}: {RefreshCount(b)} refreshes"));
            }
            finally
            {
                foreach (var b in alone.Values) b.Dispose();
            }
        }
        finally
        {
            torch.set_num_threads(before);
        }
    }

    private static int RefreshCount(ICurvatureBlock block) => block switch
    {
        KfacBlock k => k.InverseRefreshCount,
        EkfacBlock e => e.InverseRefreshCount,
        _ => throw new ArgumentException(block.GetType().Name),
    };

    [Fact]
    public void BlockThatThrows_BlocksBeforeItCompleteTheirUpdate_TheErrorIsItsOwn()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(Widths);
        var stats = Batch(model, 1, out var layers);
        string failing = layers[1].Name;
        using var curvature = new BlockDiagonalCurvature(layer => layer.Name == failing ? new ThrowingBlock() : new EkfacBlock(layer));
        var e = Assert.Throws<ArgumentException>(() => curvature.Update(new CurvatureBatch(stats, new CategoricalLikelihood(), null, 0)));
        Assert.Equal("statistics rejected", e.Message);
        var first = (EkfacBlock)curvature.Block(layers[0].Name);
        Assert.Equal(1, first.InverseRefreshCount);
        Assert.True(first.IsInitialized);
        using var expected = new EkfacBlock(layers[0]);
        expected.Update(stats[0], 0);
        var g = RandomMatrix(layers[0], 5);
        TensorAssert.Close(expected.Precondition(g, 0.1), first.Precondition(g, 0.1), rtol: 1e-12, label: "first block");
    }

    /// <summary>A block whose update rejects every batch.</summary>
    private sealed class ThrowingBlock : ICurvatureBlock
    {
        public void Update(LayerStatistics statistics, long step) => throw new ArgumentException("statistics rejected");
        public Tensor Precondition(Tensor gradient, double damping) => throw new NotSupportedException();
        public Tensor Multiply(Tensor v) => throw new NotSupportedException();
        public Tensor ToDense() => throw new NotSupportedException();
        public void Dispose() { }
    }
}
