using NaturalGradient.Capture;
using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Curvature.Kfac;
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
        CurvatureStructure.Kfac => new BlockDiagonalCurvature(layer => layer switch
        {
            TiedLayerAdapter { KroneckerFactored: false } tied => new KroneckerSumBlock(tied, options.Kfac),
            _ when layer.IsKronecker => new KfacBlock(layer, options.Kfac),
            _ => new DenseBlock(options.Form),
        }, options.LayerDamping),
        CurvatureStructure.Ekfac => new BlockDiagonalCurvature(layer =>
            layer.IsKronecker ? new EkfacBlock(layer, options.Kfac) : new DenseBlock(options.Form), options.LayerDamping),
        CurvatureStructure.HessianFree => new HessianFreeCurvature(options.HessianFree),
        CurvatureStructure.Kbfgs => new KbfgsCurvature(options.Kbfgs),
        CurvatureStructure.Auto => new AutoCurvature(options.Form, options.Kfac),
        _ => throw new NotSupportedException($"curvature structure {options.Structure} is not available yet"),
    };
}
