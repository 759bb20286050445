using NaturalGradient.Numerics;
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
    /// The running average X ← βX + (1 − β)A of <see cref="ActivationFactor"/>'s A. A = (1/m) ĀᵀĀ over the (m·T) × in'
    /// rows Ā is accumulated into X by one GEMM in place (<see cref="RunningAverage.TryAccumulateGram"/>); the first
    /// update, float64 factors and an index layer's diagonal A (a length-V vector) go through <see cref="RunningAverage.Update"/>.
    /// </summary>
    internal static void AccumulateActivation(RunningAverage average, LayerStatistics statistics, KfacWeightSharing sharing, double decay,
        KfacFactorPrecision precision = KfacFactorPrecision.Model)
    {
        using var scope = NewDisposeScope();
        if (!DiagonalActivation.Applies(statistics.Adapter))
        {
            var rows = ActivationRows(statistics, sharing);
            if (average.TryAccumulateGram(rows, rows, 1.0 / statistics.BatchSize, decay, precision)) return;
        }
        average.Update(ActivationFactor(statistics, sharing), decay);
    }

    /// <summary>The running average X ← βX + (1 − β)G of <see cref="OutputGradient"/>'s G = c DᵀD, accumulated like <see cref="AccumulateActivation"/>.</summary>
    internal static void AccumulateOutputGradient(RunningAverage average, LayerStatistics statistics, KfacWeightSharing sharing, double decay,
        KfacFactorPrecision precision = KfacFactorPrecision.Model)
    {
        using var scope = NewDisposeScope();
        var (rows, scale) = OutputGradientRows(statistics, sharing);
        if (average.TryAccumulateGram(rows, rows, scale, decay, precision)) return;
        average.Update(OutputGradient(statistics, sharing), decay);
    }

    /// <summary>Ā as (m·T) × in' rows (Reduce: m × in', the mean over positions), so that A = (1/m) ĀᵀĀ.</summary>
    private static Tensor ActivationRows(LayerStatistics statistics, KfacWeightSharing sharing)
    {
        if (sharing == KfacWeightSharing.Reduce && statistics.Positions > 1)
            return statistics.Activations.NoGraph().mean(new long[] { 1 }, keepdim: true).reshape(-1, statistics.InputWidth);
        return statistics.ActivationRows().NoGraph();   // in', the last dimension of m × T × in' (and of s × m × T × in')
    }

    /// <summary>D as (s·m·T) × out rows (Reduce: summed over positions) and the scale c with G = c DᵀD.</summary>
    private static (Tensor Rows, double Scale) OutputGradientRows(LayerStatistics statistics, KfacWeightSharing sharing)
    {
        bool reduce = sharing == KfacWeightSharing.Reduce && statistics.Positions > 1 && !DiagonalActivation.Applies(statistics.Adapter);
        var rows = reduce
            ? statistics.OutputGradients.NoGraph().sum(new long[] { 2 }, keepdim: true).reshape(-1, statistics.OutputWidth)
            : statistics.OutputGradientRows().NoGraph();
        return (rows, reduce ? statistics.Weight : statistics.Weight / statistics.Positions);
    }

    /// <summary>
    /// Expand: A = (1/m) Σᵢ Σₜ āᵢₜ āᵢₜᵀ from ā (m × T × in'), in' × in' — for an Embedding diag(token counts)/m from the
    /// indices (a dense V × V matrix: see <see cref="ActivationFactor"/> for the form the blocks keep). Reduce:
    /// A = (1/m) Σᵢ āᵢāᵢᵀ with āᵢ = (1/T) Σₜ āᵢₜ.
    /// </summary>
    public static Tensor Activation(LayerStatistics statistics, KfacWeightSharing sharing = KfacWeightSharing.Expand)
    {
        if (!DiagonalActivation.Applies(statistics.Adapter)) return ActivationFactor(statistics, sharing);
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(diag(ActivationFactor(statistics)));
    }

    /// <summary>
    /// A in the form the K-FAC and EKFAC blocks keep it: for an index layer (<see cref="DiagonalActivation.Applies"/>) the
    /// diagonal a = token counts / m, a length-V vector (counts over the m examples and all their positions); otherwise
    /// <see cref="Activation"/>'s in' × in' matrix.
    /// </summary>
    public static Tensor ActivationFactor(LayerStatistics statistics, KfacWeightSharing sharing = KfacWeightSharing.Expand)
    {
        using var scope = NewDisposeScope();
        if (statistics.Tokens is not null) return scope.MoveToOuter(TokenCounts(statistics));
        if (DiagonalActivation.Applies(statistics.Adapter))
        {
            // An index layer's statistics given as one-hot rows: ĀᵀĀ is diagonal, its diagonal the column sums of Ā ∘ Ā.
            var rows = ActivationRows(statistics, KfacWeightSharing.Expand);
            return scope.MoveToOuter(rows.square().sum(new long[] { 0 }).div_(statistics.BatchSize));
        }
        var flat = ActivationRows(statistics, sharing);                      // (m·T) × in'
        return scope.MoveToOuter(flat.t().mm(flat).div_(statistics.BatchSize));
    }

    /// <summary>diag(A) of an index layer: the count of each token over the batch's m × T indices, divided by m (length V).</summary>
    private static Tensor TokenCounts(LayerStatistics statistics) =>
        bincount(statistics.Tokens!.reshape(-1), minlength: statistics.Adapter.InputDim).InDtype(statistics.Dtype).div_(statistics.BatchSize);

    /// <summary>
    /// Expand: G = (w/T) Σₛ Σᵢ Σₜ δᵢₛₜ δᵢₛₜᵀ from δ (s × m × T × out), out × out. Reduce: G = w Σₛ Σᵢ δᵢₛδᵢₛᵀ with
    /// δᵢₛ = Σₜ δᵢₛₜ (Embedding layers always expand).
    /// </summary>
    public static Tensor OutputGradient(LayerStatistics statistics, KfacWeightSharing sharing = KfacWeightSharing.Expand)
    {
        using var scope = NewDisposeScope();
        var (flat, scale) = OutputGradientRows(statistics, sharing);        // (s·m·T) × out
        return scope.MoveToOuter(flat.t().mm(flat).mul_(scale));
    }

    /// <summary>
    /// For a mean gradient ḡ = w Σᵢ δᵢāᵢᵀ (T = 1, one gradient sample, not an Embedding): D (m × out) and Ā (m × in') in
    /// <paramref name="dtype"/>, so that ḡ = w DᵀĀ and L ḡ R = w (D Lᵀ)ᵀ(Ā R) for any out × out L and in' × in' R. Null otherwise.
    /// </summary>
    internal static (Tensor D, Tensor A)? MeanGradientRows(LayerStatistics statistics, ScalarType dtype)
    {
        if (!statistics.IsRankOne || statistics.Samples != 1 || statistics.Tokens is not null) return null;
        return (statistics.OutputGradientRows().NoGraph().InDtype(dtype), statistics.ActivationRows().NoGraph().InDtype(dtype));
    }

    private static long _meanGradientSolves;
    private static long _meanGradientInnerProducts;

    /// <summary>How many block solves in this process took the mean-gradient route (for tests of the dispatch).</summary>
    internal static long MeanGradientSolves => Interlocked.Read(ref _meanGradientSolves);

    internal static void CountMeanGradientSolve() => Interlocked.Increment(ref _meanGradientSolves);

    /// <summary>How many of those solves also gave ⟨Δ, ḡ⟩ without forming ḡ (for tests of the dispatch).</summary>
    internal static long MeanGradientInnerProducts => Interlocked.Read(ref _meanGradientInnerProducts);

    internal static void CountMeanGradientInnerProduct() => Interlocked.Increment(ref _meanGradientInnerProducts);

    /// <summary>
    /// True when w (D Lᵀ)ᵀ(Ā R), 2m(out² + in'² + out·in') flops, is cheaper than L ḡ R, 2·out·in'(out + in') flops.
    /// </summary>
    internal static bool MeanGradientRouteIsCheaper(long m, long outputs, long inputs) =>
        m * (double)(outputs * outputs + inputs * inputs + outputs * inputs) < outputs * (double)inputs * (outputs + inputs);

    /// <summary>
    /// True when ⟨Δ, ḡ⟩ = w² Σ (P Dᵀ) ∘ (Q Āᵀ) from the route's m × out P and m × in' Q, two m × m Grams of
    /// 2m²(out + in') flops, is cheaper than forming ḡ = w DᵀĀ, 2m·out·in' flops (plus the inner product's pass).
    /// </summary>
    internal static bool GramInnerProductIsCheaper(long m, long outputs, long inputs) =>
        m * (double)(outputs + inputs) < outputs * (double)inputs;

    /// <summary>
    /// ⟨Δ, ḡ⟩ in the eigenbasis, where Δ's projection is Y = X ⊘ E (X = Q_Gᵀ ḡ Q_A, E the positive divisor): the bases are
    /// orthogonal, so ⟨Δ, ḡ⟩ = ⟨Y, X⟩ = Σ (Y ∘ E) ∘ Y. A float64 scalar tensor; element-wise, no product with ḡ. Formed
    /// in that order (Y ∘ E = X, then X ∘ Y, summed in float64): the terms are products of a projected gradient entry
    /// and a projected direction entry, as Σ Δ ∘ ḡ's are, where Y ∘ Y first would square the direction. Not for a
    /// projection by bfloat16 GEMMs, whose rounding of X it would count twice.
    /// </summary>
    internal static Tensor EigenbasisInnerProduct(Tensor divided, Tensor divisor) =>
        divided.mul(divisor.InDtype(divided.dtype)).mul_(divided).sum(ScalarType.Float64);

    /// <summary>
    /// The dense block G ⊗ A (row-major vec of W̄: rows of W̄ stacked); A may be a diagonal (a length-in' vector). For
    /// tests and small layers only.
    /// </summary>
    public static Tensor Dense(Tensor g, Tensor a)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(kron(g, DiagonalActivation.ToMatrix(a)));
    }

    /// <summary>(G ⊗ A) vec(V) = vec(G V A) for a W̄-shaped V (out × in'), A and G symmetric; A may be a diagonal (a length-in' vector).</summary>
    public static Tensor Multiply(Tensor g, Tensor a, Tensor v)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(DiagonalActivation.RightMultiply(g.mm(v), a));
    }
}
