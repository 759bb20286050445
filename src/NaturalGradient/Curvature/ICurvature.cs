using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature;

/// <summary>
/// A curvature approximation M over the covered layers: it absorbs statistics and solves (M + λI) Δ = g.
/// Gradients and directions are per layer, as W̄-shaped matrices (out × in'), in the order of <c>layers</c>.
/// </summary>
public interface ICurvature : IDisposable
{
    /// <summary>Absorbs one step's metric statistics (replace, or a running average, as the method defines).</summary>
    void Update(CurvatureBatch batch);

    /// <summary>Δ = (M + λI)⁻¹ g for each layer's gradient matrix. Returns fresh tensors.</summary>
    IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping);

    /// <summary>M v (no damping): for the predicted KL ½ΔᵀMΔ and Levenberg–Marquardt's quadratic model.</summary>
    IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors);
}

/// <summary>One layer's block of a block-diagonal curvature approximation.</summary>
public interface ICurvatureBlock : IDisposable
{
    /// <summary>Absorbs this layer's statistics for the step.</summary>
    void Update(Fisher.LayerStatistics statistics, long step);

    /// <summary>(B + λI)⁻¹ g for the layer's W̄-shaped gradient g.</summary>
    Tensor Precondition(Tensor gradient, double damping);

    /// <summary>B v for a W̄-shaped v.</summary>
    Tensor Multiply(Tensor v);

    /// <summary>The dense block (p × p, row-major vec of W̄): for tests and small layers only.</summary>
    Tensor ToDense();

    /// <summary>tr(B) / p, the block's mean eigenvalue (for <see cref="Damping.LayerDamping.Relative"/>). One host read.</summary>
    double MeanCurvature() => ToDense().diagonal().mean().ToDouble();
}
