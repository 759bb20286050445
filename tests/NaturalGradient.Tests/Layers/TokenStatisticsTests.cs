using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// Embedding statistics from the token indices (gathers and scatter-adds, <see cref="TokenGradients"/>) equal the
/// statistics of the same layer given one-hot activation rows, for every block; and a 50 000-token vocabulary runs
/// without the m × T × V one-hot tensor.
/// </summary>
[Collection("Torch")]
public class TokenStatisticsTests
{
    public static TheoryData<string, long, FisherKind> Cases()
    {
        var data = new TheoryData<string, long, FisherKind>();
        foreach (var f in new[] { FisherKind.Empirical, FisherKind.Exact })
        {
            data.Add("embedding", 4, f);
            data.Add("embedding", 1, f);        // T = 1: the rank-one shortcuts do not apply to index layers
            data.Add("tied-embeddings", 4, f);  // two Embeddings sharing one table: one index layer
        }
        return data;
    }

    private static IEnumerable<(string Name, Func<ILayerAdapter, ICurvatureBlock> Create)> Blocks()
    {
        yield return ("block", _ => new DenseBlock());
        yield return ("diag", _ => new DiagonalBlock());
        yield return ("tengrad", _ => new TengradBlock());
        yield return ("kfac", l => new KfacBlock(l, new KfacOptions { InverseMethod = KfacInverseMethod.Eigen }));
        yield return ("ekfac", l => new EkfacBlock(l));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void IndexStatistics_EqualOneHotStatistics_ForEveryBlock(string name, long positions, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        if (positions != c.X.shape[1]) c = c with { X = c.X.narrow(1, 0, positions).contiguous() };
        using var capture = new LayerCapture(c.Model);
        var output = c.Model.call(c.X);
        var stats = new FisherEstimator(c.Likelihood, fisher).Collect(capture, capture.Recorded(), output, c.Y);
        var byIndex = stats.Single(s => s.Tokens is not null);
        Assert.Equal(c.X.shape[0], byIndex.BatchSize);
        var oneHot = new LayerStatistics(byIndex.Adapter, byIndex.Activations, byIndex.OutputGradients, byIndex.Weight);
        Assert.Null(oneHot.Tokens);
        Assert.Equal(byIndex.Adapter.InputDim, oneHot.Activations.shape[2]);

        string label = $"{name}, T = {positions}, {fisher}";
        TensorAssert.Close(oneHot.PerSampleGradients(), byIndex.PerSampleGradients(), rtol: 1e-12, label: label + ": per-sample gradients");
        manual_seed(3);
        var layer = byIndex.Adapter;
        var g = randn(layer.OutputDim, layer.InputDim, dtype: ScalarType.Float64);
        foreach (var (blockName, create) in Blocks())
        {
            using var a = create(layer);
            using var b = create(layer);
            a.Update(oneHot, 0);
            b.Update(byIndex, 0);
            string l = $"{label}, {blockName}";
            TensorAssert.Close(a.ToDense(), b.ToDense(), rtol: 1e-10, label: l + ": block");
            TensorAssert.Close(a.Multiply(g), b.Multiply(g), rtol: 1e-10, label: l + ": product");
            TensorAssert.Close(a.Precondition(g, 0.1), b.Precondition(g, 0.1), rtol: 1e-9, label: l + ": solve");
        }
    }

    private sealed class LargeVocabulary : nn.Module<Tensor, Tensor>
    {
        public readonly Embedding emb;
        public readonly Linear head;
        public LargeVocabulary(long vocabulary) : base("large-vocabulary")
        {
            manual_seed(4);
            emb = nn.Embedding(vocabulary, 8, dtype: ScalarType.Float64);
            head = nn.Linear(8, 3, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor tokens) => head.call(emb.call(tokens).mean(new long[] { 1 }));
    }

    [Theory]
    [InlineData(CurvatureStructure.Diagonal)]
    [InlineData(CurvatureStructure.Tengrad)]
    public void FiftyThousandTokenVocabulary_RunsWithoutOneHotRows(CurvatureStructure structure)
    {
        Assert.True(PeakMemory.Available, "needs Linux /proc to measure peak memory");
        using var scope = NewDisposeScope();
        const long vocabulary = 50_000, m = 32, t = 64;
        var model = new LargeVocabulary(vocabulary);
        var x = LayerModels.Tokens(5, m, t, vocabulary);
        var y = LayerModels.Tokens(6, m, 1, 3).squeeze(1);
        using var pc = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = structure, Fisher = FisherKind.MonteCarlo, Damping = 1e-2 });
        long oneHotBytes = m * t * vocabulary * sizeof(double);                // 819 MB

        GC.Collect();
        long before = PeakMemory.ResidentBytes();
        PeakMemory.Reset();
        for (int step = 0; step < 2; step++)
        {
            using var stepScope = NewDisposeScope();
            model.zero_grad();
            pc.Capture.Clear();
            pc.Backward(model.call(x), y);
            Assert.True(pc.Precondition().Applied);
        }
        long growth = PeakMemory.PeakBytes() - before;

        Assert.True(model.emb.weight!.grad!.isfinite().all().item<bool>());
        // A few V × d tensors (3.2 MB each), TENGraD's (m T)² Gram and its two factors (34 MB each) are expected.
        Assert.True(growth < oneHotBytes / 4, $"{structure}: peak grew by {growth / 1e6:F0} MB (the one-hot rows alone: {oneHotBytes / 1e6:F0} MB)");
    }
}
