using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Layers;
using TorchSharp;
using TorchSharp.Modules;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// A 50 000-token Embedding (d = 64) under K-FAC and EKFAC: accepted although V exceeds
/// <see cref="KfacOptions.MaxFactorDimension"/> (its A is a length-V vector, only G is a dense d × d factor), and it
/// trains (loss below half its initial value in 6 steps on a fixed batch) with peak memory a small multiple of the V × d
/// table, not the V² of a dense A (20 GB in float64).
/// </summary>
[Collection("Torch")]
public class LargeVocabularyKfacTests(ITestOutputHelper output)
{
    private const long Vocabulary = 50_000, Width = 64;

    private sealed class Classifier : nn.Module<Tensor, Tensor>
    {
        public readonly Embedding emb;
        public readonly Linear head;
        public Classifier() : base("large-vocabulary-classifier")
        {
            manual_seed(4);
            emb = nn.Embedding(Vocabulary, Width, dtype: ScalarType.Float64);
            head = nn.Linear(Width, 3, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor tokens) => head.call(emb.call(tokens).mean(new long[] { 1 }));
    }

    [Theory]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Ekfac)]
    public void FiftyThousandTokenEmbedding_TrainsWithMemoryOfOrderVd(CurvatureStructure structure)
    {
        Assert.True(PeakMemory.Available, "needs Linux /proc to measure peak memory");
        using var scope = NewDisposeScope();
        const long m = 32, t = 64;
        var model = new Classifier();
        var x = LayerModels.Tokens(5, m, t, Vocabulary);
        var y = LayerModels.Tokens(6, m, 1, 3).squeeze(1);
        var likelihood = new CategoricalLikelihood();
        using var pc = new NaturalGradientPreconditioner(model, likelihood,
            new PreconditionerOptions { Structure = structure, Fisher = FisherKind.MonteCarlo, Damping = 1e-3 });
        Assert.True(Vocabulary > pc.Options.Kfac.MaxFactorDimension);
        long tableBytes = Vocabulary * Width * sizeof(double);                   // 25.6 MB

        GC.Collect();
        long before = PeakMemory.ResidentBytes();
        PeakMemory.Reset();
        var losses = new List<double>();
        for (int step = 0; step < 6; step++)
        {
            using var stepScope = NewDisposeScope();
            model.zero_grad();
            pc.Capture.Clear();
            losses.Add(pc.Backward(model.call(x), y).item<double>());
            Assert.True(pc.Precondition().Applied);
            using (no_grad())
                foreach (var p in model.parameters()) p.add_(p.grad!, alpha: -0.3);
        }
        long growth = PeakMemory.PeakBytes() - before;
        output.WriteLine($"{structure}: losses {string.Join(", ", losses.Select(l => l.ToString("F4")))}; peak grew by {growth / 1e6:F0} MB");

        var block = ((BlockDiagonalCurvature)pc.Curvature).Block("emb");
        var a = block is KfacBlock k ? k.ActivationFactor : ((EkfacBlock)block).ActivationFactor;
        Assert.Equal(new[] { Vocabulary }, a.shape);
        Assert.True(losses[^1] < 0.5 * losses[0], $"{structure}: loss {losses[0]:F4} → {losses[^1]:F4}, expected below half");
        // A few V × d tensors per step (gradient, its W̄ copy, Δ, EKFAC's S and projections) and allocator slack; the
        // per-sample gradients (m × d × V, 819 MB) or a dense V × V factor (20 GB) would not fit under 24 tables (614 MB).
        Assert.True(growth < 24 * tableBytes, $"{structure}: peak grew by {growth / 1e6:F0} MB (24 V × d tables: {24 * tableBytes / 1e6:F0} MB)");
    }
}
