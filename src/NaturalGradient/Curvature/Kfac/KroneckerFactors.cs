using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// One batch's Kronecker factors of a layer's metric block, M ≈ G ⊗ A for the row-major vec of W̄
/// (Martens &amp; Grosse 2015 §3; Grosse &amp; Martens 2016 "KFC" §3 for convolutions).
/// </summary>
/// <remarks>
/// <para>
/// With the metric M = w Σₛ Σᵢ gᵢₛ gᵢₛᵀ and gᵢₛ = Σₜ δᵢₛₜ āᵢₜᵀ over T positions (<see cref="LayerStatistics"/>):
/// A = (1/m) Σᵢ Σₜ āᵢₜ āᵢₜᵀ (in' × in', over the m distinct inputs) and G = (w/T) Σₛ Σᵢ Σₜ δᵢₛₜ δᵢₛₜᵀ (out × out).
/// </para>
/// <para>
/// Positions: A sums and G averages over them, as KFC's Ω = E[Σₜ āₜāₜᵀ] and Γ = (1/T) E[Σₜ δₜδₜᵀ]. Under KFC's
/// assumptions (independent activations and derivatives, spatial homogeneity, spatially uncorrelated
/// derivatives) E[g gᵀ] = Σₜ E[δₜδₜᵀ] ⊗ E[āₜāₜᵀ] = Γ ⊗ Ω. Only the product G ⊗ A matters: moving the factor T from
/// one factor to the other leaves the block, both damping modes (π absorbs it) and every preconditioned gradient
/// unchanged. For T = 1 (Linear) this is A = (1/m) Σ āāᵀ, G = w Σ δδᵀ: G = (1/m) Σ δδᵀ for the empirical Fisher,
/// and for m = 1 the block is exact.
/// </para>
/// </remarks>
public static class KroneckerFactors
{
    /// <summary>
    /// Expand: A = (1/m) Σᵢ Σₜ āᵢₜ āᵢₜᵀ from ā (m × T × in'), in' × in' — for an Embedding diag(token counts)/m from the
    /// indices. Reduce: A = (1/m) Σᵢ āᵢāᵢᵀ with āᵢ = (1/T) Σₜ āᵢₜ.
    /// </summary>
    public static Tensor Activation(LayerStatistics statistics, KfacWeightSharing sharing = KfacWeightSharing.Expand)
    {
        using var scope = NewDisposeScope();
        if (statistics.Tokens is { } tokens)
        {
            var counts = bincount(tokens.reshape(-1), minlength: statistics.Adapter.InputDim).to_type(statistics.Dtype);
            return scope.MoveToOuter(diag(counts.div_(statistics.BatchSize)));
        }
        var a = statistics.Activations.detach();
        if (sharing == KfacWeightSharing.Reduce && statistics.Positions > 1) a = a.mean(new long[] { 1 }, keepdim: true);
        var flat = a.reshape(-1, a.shape[2]);                                // (m·T) × in'
        return scope.MoveToOuter(flat.t().mm(flat).div_(statistics.BatchSize));
    }

    /// <summary>
    /// Expand: G = (w/T) Σₛ Σᵢ Σₜ δᵢₛₜ δᵢₛₜᵀ from δ (s × m × T × out), out × out. Reduce: G = w Σₛ Σᵢ δᵢₛδᵢₛᵀ with
    /// δᵢₛ = Σₜ δᵢₛₜ (Embedding layers always expand).
    /// </summary>
    public static Tensor OutputGradient(LayerStatistics statistics, KfacWeightSharing sharing = KfacWeightSharing.Expand)
    {
        using var scope = NewDisposeScope();
        var d = statistics.OutputGradients.detach();
        bool reduce = sharing == KfacWeightSharing.Reduce && statistics.Positions > 1 && statistics.Tokens is null;
        if (reduce) d = d.sum(new long[] { 2 }, keepdim: true);
        var flat = d.reshape(-1, d.shape[3]);                                // (s·m·T) × out
        double scale = reduce ? statistics.Weight : statistics.Weight / statistics.Positions;
        return scope.MoveToOuter(flat.t().mm(flat).mul_(scale));
    }

    /// <summary>The dense block G ⊗ A (row-major vec of W̄: rows of W̄ stacked). For tests and small layers only.</summary>
    public static Tensor Dense(Tensor g, Tensor a) => kron(g, a);

    /// <summary>(G ⊗ A) vec(V) = vec(G V A) for a W̄-shaped V (out × in'), A and G symmetric.</summary>
    public static Tensor Multiply(Tensor g, Tensor a, Tensor v)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(g.mm(v).mm(a));
    }
}
