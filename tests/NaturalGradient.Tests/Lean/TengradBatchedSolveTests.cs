using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// TENGraD's mean-gradient push-through solves of several layers in one batch (<see cref="BlockDiagonalCurvature"/> with
/// TENGraD blocks that share n): each layer's Δ and ⟨Δ, ḡ⟩ equal the same block's single solve, and the dense solve
/// (B + λI)⁻¹ḡ in float64; a layer the batch rejects is solved as the single path solves it.
/// </summary>
[Collection("Torch")]
public class TengradBatchedSolveTests
{
    private const double Damping = 0.03;

    /// <summary>A block-diagonal TENGraD curvature updated with <paramref name="statistics"/>.</summary>
    private static BlockDiagonalCurvature Updated(IReadOnlyList<LayerStatistics> statistics)
    {
        var curvature = new BlockDiagonalCurvature(_ => new TengradBlock());
        curvature.Update(new CurvatureBatch(statistics, null!, null!, 0));
        return curvature;
    }

    [Fact]
    public void Float64_EachLayerEqualsItsSingleSolveAndTheDenseSolve()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = WideAndNarrowLayers(6);
        using var curvature = Updated(statistics);
        BatchedSolveEqualsSingleAndDenseSolves(curvature, layers, statistics, gradients, singleRtol: 1e-13);
    }

    /// <summary>
    /// Solves every layer's mean gradient in one batch (all of them batched), and checks each Δ and ⟨Δ, ḡ⟩ against the
    /// same block's single solve (to <paramref name="singleRtol"/>) and Δ against the dense (B + λI)⁻¹ḡ (to 1e-9).
    /// </summary>
    private static void BatchedSolveEqualsSingleAndDenseSolves(BlockDiagonalCurvature curvature, IReadOnlyList<NaturalGradient.Capture.ILayerAdapter> layers,
        IReadOnlyList<LayerStatistics> statistics, IReadOnlyList<Tensor> gradients, double singleRtol)
    {
        var inner = new Tensor?[layers.Count];
        long batched = TengradBlock.BatchedPushThroughSolves;
        var delta = curvature.PreconditionMeanGradient(layers.ToList(), gradients.ToList(), statistics, Damping, inner);
        Assert.Equal(layers.Count, TengradBlock.BatchedPushThroughSolves - batched);
        for (int l = 0; l < layers.Count; l++)
        {
            using var single = new TengradBlock();
            single.Update(statistics[l], 0);
            var alone = single.PreconditionMeanGradient(statistics[l], Damping, innerProduct: true)!.Value;
            TensorAssert.Close(alone.Direction, delta[l], rtol: singleRtol, label: layers[l].Name);
            Assert.Equal(alone.GradientInnerProduct!.item<double>(), inner[l]!.item<double>(), singleRtol * Math.Abs(inner[l]!.item<double>()));
            var dense = single.ToDense();
            var expected = linalg.solve(dense + Damping * eye(dense.shape[0], dtype: dense.dtype), gradients[l].flatten()).reshape(gradients[l].shape);
            TensorAssert.Close(expected, delta[l], rtol: 1e-9, label: layers[l].Name);
        }
    }

    /// <summary>
    /// Layers whose rows share a shape take one batched product Jᵀu and one batched norm; the others their own. Each
    /// layer's Δ and ⟨Δ, ḡ⟩ still equal its single solve and the dense solve (B + λI)⁻¹ḡ in float64, whether the layers
    /// of one shape are all the batch's (8-8-8-8), a run of it (8-8-8-3) or scattered through it with layers of other
    /// shapes between them (8-8-8-5-8-8-3: the 9 × 8 rows at positions 0, 1 and 4).
    /// </summary>
    [Theory]
    [InlineData(new[] { 8, 8, 8, 8 })]
    [InlineData(new[] { 8, 8, 8, 3 })]
    [InlineData(new[] { 8, 8, 8, 5, 8, 8, 3 })]
    public void LayersOfOneShape_TakeOneBatchedProduct_AndEachEqualsItsSingleAndDenseSolve(int[] sizes)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = MlpProblem(sizes, m: 6, inputSeed: 7, labelSeed: 8);
        using var curvature = Updated(statistics);
        BatchedSolveEqualsSingleAndDenseSolves(curvature, layers, statistics, gradients, singleRtol: 1e-12);
    }

    /// <summary>
    /// The stacked Grams and systems live in buffers the group's first block keeps: a second step on new statistics of the
    /// same shapes writes into the same buffer (no b × n × n float64 tensors made per step) and still equals the single
    /// solves; a batch of another n gets buffers of its shape; Dispose releases them.
    /// </summary>
    [Fact]
    public void BatchBuffers_AreKeptAcrossSteps_AndTheSolvesStillEqualTheSingleOnes()
    {
        using var scope = NewDisposeScope();
        var first = WideAndNarrowLayers(6);
        var curvature = new BlockDiagonalCurvature(_ => new TengradBlock());
        curvature.Update(new CurvatureBatch(first.Statistics, null!, null!, 0));
        curvature.PreconditionMeanGradient(first.Layers, first.Gradients, first.Statistics, Damping);
        var head = (TengradBlock)curvature.Block(first.Layers[0].Name);
        var buffer = head.BatchSystemBuffer!;
        Assert.Equal(new long[] { first.Layers.Count, 6, 6 }, buffer.shape);
        Assert.Null(head.BatchGramBuffer);   // on the CPU each system is formed from its Gram directly (DampedGramSystems)

        var second = WideAndNarrowLayers(6);
        var statistics = second.Statistics.Select(s => new LayerStatistics(s.Adapter, s.Activations.mul(1.5), s.OutputGradients.mul(0.5), s.Weight)
            { GradientWeight = s.GradientWeight }).ToList();
        curvature.Update(new CurvatureBatch(statistics, null!, null!, 1));
        var delta = curvature.PreconditionMeanGradient(second.Layers, second.Gradients.Select(g => g.mul(0.75)).ToList(), statistics, Damping);
        Assert.Same(buffer, head.BatchSystemBuffer);
        for (int l = 0; l < second.Layers.Count; l++)
        {
            using var single = new TengradBlock();
            single.Update(statistics[l], 0);
            TensorAssert.Close(single.PreconditionMeanGradient(statistics[l], Damping)!, delta[l], rtol: 1e-13, label: second.Layers[l].Name);
        }

        var third = WideAndNarrowLayers(9);
        curvature.Update(new CurvatureBatch(third.Statistics, null!, null!, 2));
        curvature.PreconditionMeanGradient(third.Layers, third.Gradients, third.Statistics, Damping);
        Assert.Equal(new long[] { third.Layers.Count, 9, 9 }, head.BatchSystemBuffer!.shape);
        curvature.Dispose();
        Assert.Null(head.BatchSystemBuffer);
    }

    /// <summary>
    /// A batch of n above <see cref="NaturalGradient.Numerics.SmallCholesky.MaxOrder"/> (n = 260 examples, layers of 420
    /// parameters) is solved by tensor operations in the kept Gram and system buffers; each layer still equals its single
    /// solve (LAPACK's Cholesky at this order) and the dense solve.
    /// </summary>
    [Fact]
    public void BatchAboveTheSmallCholeskyOrder_TakesTheTensorOperations_AndEachEqualsItsSingleAndDenseSolve()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = MlpProblem(new[] { 20, 20, 20, 20 }, m: NaturalGradient.Numerics.SmallCholesky.MaxOrder + 4, inputSeed: 3, labelSeed: 4);
        using var curvature = Updated(statistics);
        BatchedSolveEqualsSingleAndDenseSolves(curvature, layers, statistics, gradients, singleRtol: 1e-11);
        var head = (TengradBlock)curvature.Block(layers[0].Name);
        Assert.Equal(new long[] { layers.Count, 260, 260 }, head.BatchGramBuffer!.shape);
    }

    [Fact]
    public void Float32_EachLayerEqualsItsSingleSolve()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics64, gradients64) = WideAndNarrowLayers(6);
        var statistics = statistics64.Select(Float32).ToList();
        var gradients = gradients64.Select(g => g.to_type(ScalarType.Float32)).ToList();
        using var curvature = Updated(statistics);
        long batched = TengradBlock.BatchedPushThroughSolves;
        var delta = curvature.PreconditionMeanGradient(layers, gradients, statistics, Damping);
        Assert.Equal(layers.Count, TengradBlock.BatchedPushThroughSolves - batched);
        for (int l = 0; l < layers.Count; l++)
        {
            using var single = new TengradBlock();
            single.Update(statistics[l], 0);
            var alone = single.PreconditionMeanGradient(statistics[l], Damping)!;
            TensorAssert.Close(alone.to_type(ScalarType.Float64), delta[l].to_type(ScalarType.Float64), rtol: 1e-6, label: layers[l].Name);
        }
    }

    /// <summary>
    /// The batched solve leaves in the caller's dispose scope only what it returns: one Δ per layer, and ⟨Δ, ḡ⟩ per layer
    /// when asked for (the stacked systems, factors, u and the read's operands end with the solve).
    /// </summary>
    [Fact]
    public void BatchedSolve_LeavesOnlyItsResultsInTheCallersScope()
    {
        using var outer = NewDisposeScope();
        var (layers, statistics, gradients) = WideAndNarrowLayers(6);
        using var curvature = Updated(statistics);
        using var scope = NewDisposeScope();
        int Added(Action solve)
        {
            int before = scope.DisposablesCount;
            solve();
            return scope.DisposablesCount - before;
        }
        long batched = TengradBlock.BatchedPushThroughSolves;
        Assert.Equal(layers.Count, Added(() => curvature.PreconditionMeanGradient(layers, gradients, statistics, Damping)));
        Assert.Equal(2 * layers.Count, Added(() => curvature.PreconditionMeanGradient(layers, gradients, statistics, Damping, new Tensor?[layers.Count])));
        Assert.Equal(2 * layers.Count, TengradBlock.BatchedPushThroughSolves - batched);
    }

    /// <summary>
    /// Layers of different n (statistics of 6 and of 8 examples, one layer each) are not batched with each other: each
    /// is solved alone, with the same result as its single solve.
    /// </summary>
    [Fact]
    public void LayersOfDifferentN_AreSolvedAlone()
    {
        using var scope = NewDisposeScope();
        var (layers, six, gradients) = WideAndNarrowLayers(6);
        var (_, eight, _) = WideAndNarrowLayers(8);
        var statistics = new[] { six[0], Rebind(eight[1], layers[1]) };
        var gradientPair = new[] { gradients[0], gradients[1] };
        using var curvature = Updated(statistics);
        long batched = TengradBlock.BatchedPushThroughSolves, routed = TengradBlock.MeanGradientSolves;
        var delta = curvature.PreconditionMeanGradient(layers.Take(2).ToList(), gradientPair, statistics, Damping);
        Assert.Equal(0, TengradBlock.BatchedPushThroughSolves - batched);
        Assert.Equal(2, TengradBlock.MeanGradientSolves - routed);
        for (int l = 0; l < 2; l++)
        {
            using var single = new TengradBlock();
            single.Update(statistics[l], 0);
            TensorAssert.Close(single.PreconditionMeanGradient(statistics[l], Damping)!, delta[l], rtol: 1e-13, label: layers[l].Name);
        }
    }

    /// <summary>
    /// The figure-5 net of depth 16 after 30 TENGraD steps (float32, λ = 1e-2; <see cref="Reliability.TengradPushThroughTests"/>):
    /// the push-through's rounding bound fails for some layers. The batch leaves them to the caller, which solves them as
    /// the single path does (eq 40 from the batch's factor), while the other layers keep their batched solve: every
    /// layer's Δ equals that of a fresh block fed the same statistics and solved alone.
    /// </summary>
    [Fact]
    public void RejectedLayers_AreSolvedAsTheSinglePathSolvesThem()
    {
        using var scope = NewDisposeScope();
        const double damping = 1e-2;
        var (_, pre, _, _, _) = Reliability.TengradPushThroughTests.DeepNoiseProblem(damping, 128);
        using var _ = pre;
        var gradients = pre.GradientMatrices().Select(g => g.detach().clone()).ToList();
        long batched = TengradBlock.BatchedPushThroughSolves, reuses = TengradBlock.FactorReuses;
        var delta = pre.SolveMeanGradient(gradients, damping).Select(d => d.detach().clone()).ToList();
        long taken = TengradBlock.BatchedPushThroughSolves - batched;
        int gram = Reliability.TengradPushThroughTests.GramLayers(pre);   // the 21 × 1 head is solved in parameter space, outside the batch
        Assert.Equal(pre.Layers.Count - 1, gram);
        Assert.True(taken > 0 && taken < gram, $"the batch takes some layers and rejects others ({taken} of {gram})");
        Assert.Equal(gram - taken, TengradBlock.FactorReuses - reuses);
        var curvature = (BlockDiagonalCurvature)pre.Curvature;
        for (int l = 0; l < pre.Layers.Count; l++)
        {
            var statistics = ((TengradBlock)curvature.Block(pre.Layers[l].Name)).Statistics!;
            using var single = new TengradBlock();
            single.Update(statistics, 0);
            var expected = single.PreconditionMeanGradient(statistics, damping) ?? single.Precondition(gradients[l], damping);
            TensorAssert.Close(expected.to_type(ScalarType.Float64), delta[l].to_type(ScalarType.Float64), rtol: 1e-6, label: pre.Layers[l].Name);
        }
    }

    private static LayerStatistics Rebind(LayerStatistics s, NaturalGradient.Capture.ILayerAdapter adapter) =>
        new(adapter, s.Activations, s.OutputGradients, s.Weight);
}
