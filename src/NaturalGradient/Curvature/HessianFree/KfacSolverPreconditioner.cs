using NaturalGradient.Curvature.Kfac;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.HessianFree;

/// <summary>
/// K-FAC's damped inverse as the preconditioner of Hessian-free's Krylov solver: P r = vec((G + √λ/π I)⁻¹ R (A + π√λ I)⁻¹)
/// per layer (block-diagonal, symmetric positive definite for λ &gt; 0), with R the layer's W̄-shaped piece of r and A, G
/// running averages of the step's statistics (<see cref="KfacBlock"/>, <see cref="KfacOptions"/>; the blocks K-FAC gives
/// every layer kind: <see cref="CurvatureFactory.KfacLayerBlock"/>, so a LayerNorm gets its dense block and a tensor tied
/// in transposed layouts the sum of its uses' Kronecker terms). A good approximation
/// of (G_exact + λI)⁻¹ clusters the preconditioned spectrum, so CG and MINRES need fewer G-products for the same
/// tolerance (Martens 2010 §4.7 uses a diagonal; K-FAC is the Kronecker-factored analogue).
/// </summary>
public sealed partial class KfacSolverPreconditioner : IDisposable
{
    private readonly BlockDiagonalCurvature _blocks;

    /// <param name="options">Decay and periods; null = <see cref="HessianFreeOptions.KfacPreconditionerOptions"/>'s default (factors every step).</param>
    public KfacSolverPreconditioner(KfacOptions? options = null)
    {
        var validated = (options ?? new HessianFreeOptions().KfacPreconditionerOptions).Validate();
        _blocks = new BlockDiagonalCurvature(layer => CurvatureFactory.KfacLayerBlock(layer, validated));
    }

    /// <summary>Absorbs the step's statistics into the factors.</summary>
    public void Update(CurvatureBatch batch) => _blocks.Update(batch);

    /// <summary>P r for a flat r in the layout's parameter order (λ &gt; 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException">λ ≤ 0: K-FAC's factors are only positive semidefinite.</exception>
    public Tensor Apply(ParameterLayout layout, Tensor r, double damping)
    {
        if (!(damping > 0))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, "the K-FAC preconditioner needs damping > 0");
        using var scope = NewDisposeScope();
        var pieces = layout.ToMatrices(r);
        var solved = _blocks.Precondition(layout.Layers, pieces, damping);
        return scope.MoveToOuter(layout.ToFlat(solved).to_type(r.dtype));
    }

    public void Dispose() => _blocks.Dispose();
}
