using NaturalGradient.Capture;
using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Preconditioning;

namespace NaturalGradient.Curvature;

/// <summary>
/// Builds the <see cref="ICurvature"/> that <see cref="PreconditionerOptions.Structure"/> names. Under K-FAC and EKFAC,
/// layers that are not Kronecker-factored (LayerNorm, BatchNorm: 2 · features parameters) get a dense per-layer block;
/// under K-FAC a tensor tied in transposed layouts gets the sum of its uses' Kronecker terms (<see cref="KroneckerSumBlock"/>).
/// </summary>
public static class CurvatureFactory
{
    public static ICurvature Create(PreconditionerOptions options) => options.Structure switch
    {
        CurvatureStructure.Exact => new ExactCurvature(options.MaxExactParameters, options.Form),
        CurvatureStructure.BlockDiagonal => new BlockDiagonalCurvature(_ => new DenseBlock(options.Form), options.LayerDamping),
        CurvatureStructure.Tengrad => new BlockDiagonalCurvature(_ => new TengradBlock(options.Form), options.LayerDamping),
        CurvatureStructure.Diagonal => new BlockDiagonalCurvature(_ => new DiagonalBlock(), options.LayerDamping),
        CurvatureStructure.Kfac => new BlockDiagonalCurvature(layer => KfacLayerBlock(layer, options.Kfac, options.Form), options.LayerDamping),
        CurvatureStructure.Ekfac => new BlockDiagonalCurvature(layer =>
            layer.IsKronecker ? new EkfacBlock(layer, options.Kfac) : new DenseBlock(options.Form), options.LayerDamping),
        CurvatureStructure.HessianFree => new HessianFreeCurvature(options.HessianFree),
        CurvatureStructure.Kbfgs => new KbfgsCurvature(options.Kbfgs),
        CurvatureStructure.Auto => new AutoCurvature(options.Form, options.Kfac),
        _ => throw new NotSupportedException($"curvature structure {options.Structure} is not available yet"),
    };

    /// <summary>
    /// K-FAC's block for <paramref name="layer"/>: <see cref="KfacBlock"/> for a Kronecker layer,
    /// <see cref="KroneckerSumBlock"/> for a tensor tied in transposed layouts, a dense per-layer block (metric form
    /// <paramref name="form"/>) for a layer that is not Kronecker-factored (LayerNorm, BatchNorm).
    /// </summary>
    public static ICurvatureBlock KfacLayerBlock(ILayerAdapter layer, KfacOptions kfac, MetricForm form = MetricForm.Uncentered) => layer switch
    {
        TiedLayerAdapter { KroneckerFactored: false } tied => new KroneckerSumBlock(tied, kfac),
        _ when layer.IsKronecker => new KfacBlock(layer, kfac),
        _ => new DenseBlock(form),
    };
}
