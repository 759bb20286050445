using System.Reflection;
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TransformerBlock;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// The transformer-style block (Embedding → attention projections → LayerNorm → MLP, residuals): every parameter is
/// covered by K-FAC and TENGraD, one float64 step equals the dense block solve for TENGraD, and samples/TransformerBlock
/// trains with both to a training-set loss below 0.1 in 60 steps.
/// </summary>
[Collection("Torch")]
public class TransformerBlockTests
{
    [Theory]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Tengrad)]
    [InlineData(CurvatureStructure.Ekfac)]
    public void EveryParameterIsCovered(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        using var model = new TransformerClassifier(6, 4, 3, ScalarType.Float64);
        using var pc = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(), new PreconditionerOptions { Structure = structure, Damping = 1e-2 });
        var report = pc.Coverage();
        Assert.Equal(19, report.Entries.Count);
        Assert.All(report.Entries, e => Assert.True(e.Covered, $"{e.Parameter}: {e.Treatment}"));
    }

    [Fact]
    public void TengradBlocks_EqualTheDenseFisherBlocks_OnTheTransformer()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        var model = new TransformerClassifier(6, 4, 3, ScalarType.Float64);
        var c = new LayerCase("transformer", model, LayerModels.Tokens(5, 4, 5, 6), LayerModels.Tokens(6, 4, 1, 3).squeeze(1), new CategoricalLikelihood());
        using var pc = new NaturalGradientPreconditioner(model, c.Likelihood,
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Exact, Damping = 0.1 });
        var adapters = pc.Capture.Layers.Select(l => l.Adapter).ToList();
        pc.Capture.Enabled = false;
        var reference = LayerBlockTests.ReferenceFisher(c, adapters, FisherKind.Exact);
        pc.Capture.Enabled = true;
        pc.Capture.Clear();
        pc.CollectMetric(model.call(c.X), c.Y);
        manual_seed(7);
        var g = pc.Layers.Select(l => randn(l.OutputDim, l.InputDim, dtype: ScalarType.Float64)).ToList();
        var delta = pc.Solve(g, 0.1);
        long offset = 0;
        for (int l = 0; l < pc.Layers.Count; l++)
        {
            long p = pc.Layers[l].ParameterCount;
            var block = reference.narrow(0, offset, p).narrow(1, offset, p);
            offset += p;
            var expected = Reference.BruteForce.DampedSolve(block, 0.1, g[l].flatten()).reshape(g[l].shape);
            TensorAssert.Close(expected, delta[l], rtol: 1e-8, label: $"TENGraD solve of {pc.Layers[l].Name} ({pc.Layers[l].KindName})");
        }
        Assert.Equal(reference.shape[0], offset);
    }

    [Fact]
    public void Sample_TrainsWithKfacAndTengrad()
    {
        var entry = Assembly.Load("TransformerBlock").EntryPoint!;
        var exit = entry.Invoke(null, new object[] { Array.Empty<string>() });
        Assert.Equal(0, (int)exit!);
    }
}
