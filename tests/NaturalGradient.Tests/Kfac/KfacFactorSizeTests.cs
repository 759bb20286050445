using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using NaturalGradient.Tests.Layers;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// A layer wider than <see cref="KfacOptions.MaxFactorDimension"/> is refused when the preconditioner is built, with the
/// layer, its factor sizes and the alternatives named, instead of allocating factors it cannot hold.
/// </summary>
[Collection("Torch")]
public class KfacFactorSizeTests
{
    [Theory]
    [InlineData(CurvatureStructure.Kfac, "kfac")]
    [InlineData(CurvatureStructure.Ekfac, "ekfac")]
    [InlineData(CurvatureStructure.Kbfgs, "kbfgs")]
    public void LayerWiderThanTheLimit_IsRefusedBeforeAnyWork(CurvatureStructure structure, string name)
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 40, 6, 3 }, seed: 1);
        var options = new PreconditionerOptions { Structure = structure, Damping = 1e-2, Kfac = new KfacOptions { MaxFactorDimension = 32 } };
        var e = Assert.Throws<ModelNotSupportedException>(() => new NaturalGradientPreconditioner(model, new CategoricalLikelihood(), options));
        Assert.Equal(
            $"{name} would keep 41 × 41 and 6 × 6 factors for layer 'fc0' (Linear), wider than the limit of 32 (KfacOptions.MaxFactorDimension): " +
            "use tengrad, diag or auto, or exclude the layer with IncludeLayer (it then keeps its plain gradient)", e.Message);
    }

    [Fact]
    public void LayersWithinTheLimit_AndOtherStructures_AreAccepted()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 40, 6, 3 }, seed: 1);
        using var kfac = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Damping = 1e-2, Kfac = new KfacOptions { MaxFactorDimension = 41 } });
        using var tengrad = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Damping = 1e-2, Kfac = new KfacOptions { MaxFactorDimension = 32 } });
        Assert.Throws<ArgumentOutOfRangeException>(() => new KfacOptions { MaxFactorDimension = 0 }.Validate());
    }

    [Theory]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Ekfac)]
    [InlineData(CurvatureStructure.Kbfgs)]
    public void AnEmbedding_IsLimitedByItsDenseFactorOnly(CurvatureStructure structure)
    {
        // K-FAC and EKFAC keep the Embedding's A (50 × 50) as a vector: only G (8 × 8, then 40 × 40) counts against the
        // limit. K-BFGS keeps a dense A and is limited by V.
        using var scope = NewDisposeScope();
        string name = structure.ToString().ToLowerInvariant();
        var options = new PreconditionerOptions { Structure = structure, Damping = 1e-2, Kfac = new KfacOptions { MaxFactorDimension = 32 } };
        var narrow = new LayerModels.EmbeddingModel(50, 8, 4, 3);
        if (structure == CurvatureStructure.Kbfgs)
        {
            var e = Assert.Throws<ModelNotSupportedException>(() => new NaturalGradientPreconditioner(narrow, new CategoricalLikelihood(), options));
            Assert.Equal(
                "kbfgs would keep 50 × 50 and 8 × 8 factors for layer 'emb' (Embedding), wider than the limit of 32 (KfacOptions.MaxFactorDimension): " +
                "use tengrad, diag or auto, or exclude the layer with IncludeLayer (it then keeps its plain gradient)", e.Message);
            return;
        }
        using (new NaturalGradientPreconditioner(narrow, new CategoricalLikelihood(), options)) { }
        var wide = new LayerModels.EmbeddingModel(50, 40, 4, 3);
        var refused = Assert.Throws<ModelNotSupportedException>(() => new NaturalGradientPreconditioner(wide, new CategoricalLikelihood(), options));
        Assert.Equal(
            $"{name} would keep a 40 × 40 factor G (and a diagonal A of length 50) for layer 'emb' (Embedding), wider than the limit of 32 " +
            "(KfacOptions.MaxFactorDimension): use tengrad, diag or auto, or exclude the layer with IncludeLayer (it then keeps its plain gradient)", refused.Message);
    }
}
