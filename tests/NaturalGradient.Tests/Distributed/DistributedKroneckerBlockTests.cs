using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training;
using TorchSharp;
using NaturalGradient.Tests.Layers;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Distributed;

/// <summary>
/// The distributed K-FAC protocol's block hooks in one process: two shards' factor shares summed, the inverse work done
/// by one block (the owner) and imported by another (a receiver), give the receiver the preconditioned gradients of a
/// block that absorbed the whole batch; and the work assignment balances in'³ + out³.
/// </summary>
[Collection("Torch")]
public class DistributedKroneckerBlockTests
{
    private const int M = 6;

    public static TheoryData<string> Blocks() => new() { "kfac-eigen-factored", "kfac-eigen-eigenbasis", "kfac-cholesky-factored", "ekfac", "ekfac-factored" };

    /// <summary>Every configuration on a Linear layer and on an Embedding (whose A travels as a length-V vector).</summary>
    public static TheoryData<string, string> BlocksAndLayers()
    {
        var data = new TheoryData<string, string>();
        foreach (var layer in new[] { "linear", "embedding" })
            foreach (var configuration in Blocks())
                data.Add(configuration, layer);
        return data;
    }

    private static IDistributedKroneckerBlock Create(string configuration, ILayerAdapter layer, KfacOptions options) =>
        (IDistributedKroneckerBlock)(configuration == "ekfac-factored" ? new EkfacBlock(layer, options) : CreateBlock(configuration, layer, options));

    /// <summary>Rows [start, start + count) of a batch's statistics, weighted as the shard's own (w·m/m_r), and the shard's share m_r/m.</summary>
    private static (LayerStatistics Stats, double Share) Shard(LayerStatistics s, long start, long count)
    {
        double weight = s.Weight * s.BatchSize / count;
        var d = s.OutputGradients.narrow(1, start, count);
        var shard = s.Tokens is { } tokens
            ? LayerStatistics.FromTokens(s.Adapter, tokens.narrow(0, start, count), d, weight)
            : new LayerStatistics(s.Adapter, s.Activations.narrow(0, start, count), d, weight);
        return (shard, (double)count / s.BatchSize);
    }

    /// <summary>Four batches' statistics of the first layer of an MLP, or of the Embedding of a token model.</summary>
    private static List<LayerStatistics> Batches(string layer)
    {
        if (layer == "linear")
        {
            var mlp = TestModels.Mlp(new[] { 4, 5, 3 });
            return Enumerable.Range(0, 4)
                .Select(s => Collect(mlp, TestModels.Inputs(M, 4, seed: 10 + s) * (1 + s), Labels(M, 3, seed: 20 + s), new CategoricalLikelihood()).Statistics[0])
                .ToList();
        }
        manual_seed(5);
        var model = new LayerModels.EmbeddingModel(11, 3, 4, 3);
        return Enumerable.Range(0, 4)
            .Select(s => Collect(model, LayerModels.Tokens(10 + s, M, 3, 11), Labels(M, 3, seed: 20 + s), new CategoricalLikelihood()).Statistics
                .Single(x => x.Tokens is not null))
            .ToList();
    }

    [Theory]
    [MemberData(nameof(BlocksAndLayers))]
    public void OwnerComputes_ReceiverImports_EqualsTheBlockThatSawTheWholeBatch(string configuration, string layerKind)
    {
        using var scope = NewDisposeScope();
        var options = new KfacOptions { FactorDecay = 0.8, FactorUpdatePeriod = 1, InverseUpdatePeriod = 2 };
        var batches = Batches(layerKind);
        var layer = batches[0].Adapter;
        using var whole = (ICurvatureBlock)Create(configuration, layer, options);
        var owner = Create(configuration, layer, options);
        var receiver = Create(configuration, layer, options);
        var dampings = new[] { 0.05, 0.07, 0.07, 0.07 };
        try
        {
            for (int step = 0; step < 4; step++)
            {
                var stats = batches[step];
                whole.Update(stats, step);
                var shards = new[] { Shard(stats, 0, 4), Shard(stats, 4, 2) };
                bool first = step == 0;
                // The factors summed over shards, folded into the running average.
                var a = shards.Select(x => KroneckerFactors.ActivationFactor(x.Stats).mul(x.Share)).Aggregate((p, q) => p + q);
                var g = shards.Select(x => KroneckerFactors.OutputGradient(x.Stats).mul(x.Share)).Aggregate((p, q) => p + q);
                if (!first)
                {
                    a = owner.ActivationFactor * 0.8 + a * 0.2;
                    g = owner.OutputGradientFactor * 0.8 + g * 0.2;
                }
                owner.SetFactors(a, g, step);
                receiver.SetFactors(a, g, step);
                Assert.Equal(owner.DecompositionDue, receiver.DecompositionDue);
                if (owner.DecompositionDue)
                {
                    owner.Decompose();
                    receiver.ImportInverse(KroneckerInverseState.Decomposition, owner.ExportInverse(KroneckerInverseState.Decomposition));
                    Assert.False(receiver.DecompositionDue);
                }
                if (owner is EkfacBlock eOwner && receiver is EkfacBlock eReceiver)
                {
                    // Each shard projected on its own rank's copy of the basis, summed.
                    var s = eOwner.ScalingContribution(shards[0].Stats).mul(shards[0].Share) + eReceiver.ScalingContribution(shards[1].Stats).mul(shards[1].Share);
                    bool restart = first || step % 2 == 0;
                    eOwner.UpdateScaling(s, restart);
                    eReceiver.UpdateScaling(s, restart);
                }
                double lambda = dampings[step];
                bool due = owner.DampedInverseDue(lambda);
                Assert.Equal(due, receiver.DampedInverseDue(lambda));
                // Cholesky inverses fall due on the first step, when λ changes (step 1) and on inverse steps (2); step 3 keeps them.
                Assert.Equal(configuration == "kfac-cholesky-factored" && step != 3, due);
                if (due)
                {
                    owner.RefreshDampedInverse(lambda);
                    receiver.ImportInverse(KroneckerInverseState.DampedInverse, owner.ExportInverse(KroneckerInverseState.DampedInverse));
                    Assert.False(receiver.DampedInverseDue(lambda));
                }
                var gradient = RandomMatrix(layer, 100 + step);
                TensorAssert.Close(whole.Precondition(gradient, lambda), receiver.Precondition(gradient, lambda), rtol: 1e-10, label: $"{configuration}, {layerKind}, step {step}");
                TensorAssert.Close(whole.Precondition(gradient, lambda), owner.Precondition(gradient, lambda), rtol: 1e-10, label: $"{configuration}, {layerKind}, owner step {step}");
            }
        }
        finally
        {
            owner.Dispose();
            receiver.Dispose();
        }
    }

    [Fact]
    public void ReceiverThatDidNotImportTheDueDecomposition_RefusesToPrecondition()
    {
        using var scope = NewDisposeScope();
        var (layers, stats) = Collect(TestModels.Mlp(new[] { 4, 5, 3 }), TestModels.Inputs(M, 4, seed: 1), Labels(M, 3), new CategoricalLikelihood());
        using var block = new KfacBlock(layers[0], new KfacOptions { InverseMethod = KfacInverseMethod.Eigen });
        block.SetFactors(KroneckerFactors.Activation(stats[0]), KroneckerFactors.OutputGradient(stats[0]), 0);
        var e = Assert.Throws<InvalidOperationException>(() => block.Precondition(RandomMatrix(layers[0], 1), 0.1));
        Assert.Contains("its eigendecomposition is due (Decompose or ImportInverse first)", e.Message);
    }

    [Fact]
    public void Assignment_BalancesCubicCost_LargestFirst_OnTheLeastLoadedRank()
    {
        using var scope = NewDisposeScope();
        // Layers (in' × out): 5 × 5 (cost 250), 6 × 3 (243), 4 × 2 (72).
        var (layers, _) = Collect(TestModels.Mlp(new[] { 4, 5, 3, 2 }), TestModels.Inputs(M, 4, seed: 1), Labels(M, 2), new CategoricalLikelihood());
        Assert.Equal(new[] { 250.0, 243.0, 72.0 }, layers.Select(KroneckerWorkAssignment.Cost).ToArray());
        var two = new KroneckerWorkAssignment(layers, 2);
        Assert.Equal(new[] { 0, 1, 1 }, layers.Select(l => two.Owner(l.Name)).ToArray());
        Assert.Equal(new[] { 250.0, 315.0 }, two.Load);
        var one = new KroneckerWorkAssignment(layers, 1);
        Assert.All(layers, l => Assert.Equal(0, one.Owner(l.Name)));
        var four = new KroneckerWorkAssignment(layers, 4);
        Assert.Equal(new[] { 0, 1, 2 }, layers.Select(l => four.Owner(l.Name)).ToArray());
        Assert.Equal(0.0, four.Load[3]);
        Assert.Throws<KeyNotFoundException>(() => two.Owner("absent"));
    }
}
