using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Layers;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Methods;

/// <summary>
/// auto prices an Embedding by what its blocks do: TENGraD's Gram from index equality ((nT)²(1 + out)) and gathers,
/// K-FAC's diagonal A (counting, reciprocals, a column scaling) — not as a Linear layer on V-wide one-hot rows.
/// </summary>
[Collection("Torch")]
public class AutoIndexLayerTests
{
    [Fact]
    public void IndexLayerFormulas()
    {
        // Embedding(50 000, 64), m = n = 32, T = 64: nT = 2048.
        Assert.Equal(2048.0 * 2048 * 65 + 32.0 * 32 * 32 / 3 + 2 * 2048.0 * 64,
            StructureCostModel.TengradFlops(32, 64, 50_000, 64, indexLayer: true), 6);
        Assert.Equal(2048.0 + 2048.0 * 64 * 64 + (50_000.0 + 64.0 * 64 * 64) / 10 + 2 * 64.0 * 64 * 50_000 + 64.0 * 50_000,
            StructureCostModel.KfacFlops(32, 32, 64, 50_000, 64, KfacInverseMethod.Cholesky, 10, diagonalActivation: true), 6);
        var options = new KfacOptions();
        // Short sequences: TENGraD's (nT)² Gram is cheaper; long ones: K-FAC (a dense V × V A would never be).
        Assert.Equal(LayerStructure.Tengrad, StructureCostModel.Choose("emb", 32, 32, 64, 50_000, 64, options, indexLayer: true).Choice);
        Assert.Equal(LayerStructure.Kfac, StructureCostModel.Choose("emb", 32, 32, 1024, 50_000, 64, options, indexLayer: true).Choice);
        Assert.Equal(LayerStructure.Tengrad, StructureCostModel.Choose("emb", 32, 32, 1024, 50_000, 64, options, indexLayer: false).Choice);
    }

    [Fact]
    public void AnEmbeddingUnderAuto_GetsKfacWithADiagonalA_WhenThatIsCheaper()
    {
        // V = 50, d = 4, m = 8, T = 32 (Monte-Carlo, n = 8): TENGraD 256²·5 + … ≈ 3.3e5 flops, K-FAC ≈ 6.2e3.
        using var scope = NewDisposeScope();
        manual_seed(5);
        var model = new LayerModels.EmbeddingModel(50, 4, 5, 3);
        var x = LayerModels.Tokens(6, 8, 32, 50);
        var y = LayerModels.Tokens(7, 8, 1, 3).squeeze(1);
        using var pc = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Auto, Fisher = FisherKind.MonteCarlo, Damping = 1e-2 });
        pc.Backward(model.call(x), y);
        Assert.True(pc.Precondition().Applied);
        var block = ((AutoCurvature)pc.Curvature).Block("emb");
        Assert.Equal(LayerStructure.Kfac, block.Choice!.Choice);
        var kfac = Assert.IsType<KfacBlock>(block.Inner);
        Assert.Equal(new[] { 50L }, kfac.ActivationFactor.shape);
    }
}
