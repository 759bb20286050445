using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.HessianFree;

/// <summary>
/// The solver preconditioner of Hessian-free natural gradient: P r = r / (diag F̂ + λ)^ξ, with diag F̂ the diagonal of
/// the step's Fisher estimate, w Σₙ gₙ ∘ gₙ over the per-sample gradients of <see cref="LayerStatistics"/> (for T = 1
/// computed as w (δ∘δ)ᵀ(ā∘ā) without forming them; <see cref="DiagonalBlock"/>). Martens 2010 §4.7.
/// </summary>
/// <remarks>
/// Why this estimate rather than Hutchinson's diag(G) ≈ E[z ∘ G z]: it costs no extra G-products (the statistics are
/// collected anyway), is exact for <c>FisherKind.Exact</c> (whose gradient samples are the columns J_rᵢᵀ Bᵢ, so
/// Σ gₙ ∘ gₙ = diag Σᵢ J_rᵢᵀ Bᵢ Bᵢᵀ J_rᵢ = m · diag G), and is never negative, so P stays positive definite as
/// CG and MINRES require. Entries of diag F̂ + λ below 10⁻¹² of the largest are raised to that floor.
/// </remarks>
public static class DiagonalFisherPreconditioner
{
    /// <summary>The flat (parameter-order) vector d = (diag F̂ + λ)^ξ, or null when the estimate is zero everywhere.</summary>
    /// <exception cref="InvalidOperationException">A covered layer has no statistics in the batch.</exception>
    public static Tensor? Denominator(ParameterLayout layout, IReadOnlyList<LayerStatistics> statistics, double damping, double exponent, long step)
    {
        var diagonals = new List<Tensor>(layout.Layers.Count);
        foreach (var layer in layout.Layers)
        {
            var stats = statistics.FirstOrDefault(s => ReferenceEquals(s.Adapter, layer) || s.Adapter.Name == layer.Name)
                ?? throw new InvalidOperationException(
                    $"the diagonal preconditioner needs statistics for layer '{layer.Name}', but the metric batch has none");
            using var block = new DiagonalBlock();
            block.Update(stats, step);
            diagonals.Add(block.Multiply(ones(layer.OutputDim, layer.InputDim, dtype: stats.Dtype)));
        }
        var d = layout.ToFlat(diagonals).add(damping);
        double max = d.max().ToDouble();
        if (!(max > 0) || !double.IsFinite(max)) return null;
        d = d.clamp_min(1e-12 * max);
        return exponent == 1 ? d : d.pow(exponent);
    }
}
