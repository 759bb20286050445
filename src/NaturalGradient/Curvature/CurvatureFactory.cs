using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Preconditioning;

namespace NaturalGradient.Curvature;

/// <summary>Builds the <see cref="ICurvature"/> that <see cref="PreconditionerOptions.Structure"/> names.</summary>
public static class CurvatureFactory
{
    public static ICurvature Create(PreconditionerOptions options) => options.Structure switch
    {
        CurvatureStructure.Exact => new ExactCurvature(options.MaxExactParameters, options.Form),
        CurvatureStructure.BlockDiagonal => new BlockDiagonalCurvature(_ => new DenseBlock(options.Form)),
        CurvatureStructure.Tengrad => new BlockDiagonalCurvature(_ => new TengradBlock(options.Form)),
        CurvatureStructure.Diagonal => new BlockDiagonalCurvature(_ => new DiagonalBlock()),
        CurvatureStructure.Kfac => new BlockDiagonalCurvature(layer => new KfacBlock(layer, options.Kfac)),
        CurvatureStructure.Ekfac => new BlockDiagonalCurvature(layer => new EkfacBlock(layer, options.Kfac)),
        CurvatureStructure.HessianFree => new HessianFreeCurvature(options.HessianFree),
        CurvatureStructure.Kbfgs => new KbfgsCurvature(options.Kbfgs),
        CurvatureStructure.Auto => new AutoCurvature(options.Form, options.Kfac),
        _ => throw new NotSupportedException($"curvature structure {options.Structure} is not available yet"),
    };
}
