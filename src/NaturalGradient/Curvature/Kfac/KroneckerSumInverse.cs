using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// The exact inverse of a sum of two Kronecker products, M = Ĝ₁ ⊗ Â₁ + G₂ ⊗ A₂ (row-major vec of an R × C matrix), with
/// Ĝ₁ (R × R), Â₁ (C × C) symmetric positive definite and G₂, A₂ symmetric positive semi-definite, by simultaneous
/// diagonalisation (Martens, Ba &amp; Johnson 2018, "Kronecker-factored curvature approximations for recurrent neural
/// networks", §3.5 and appendix).
/// </summary>
/// <remarks>
/// <para>Per side: Ĝ₁ = Q diag(e) Qᵀ gives the whitening W_G = Q diag(e^{-1/2}) (W_Gᵀ Ĝ₁ W_G = I); then
/// W_Gᵀ G₂ W_G = U diag(s) Uᵀ and P_G = W_G U satisfies P_Gᵀ Ĝ₁ P_G = I, P_Gᵀ G₂ P_G = diag(s). Likewise P_A, t for Â₁, A₂.
/// Then (P_G ⊗ P_A)ᵀ M (P_G ⊗ P_A) = diag(vec(1 + s tᵀ)), so M⁻¹ = (P_G ⊗ P_A) diag(vec(1 / (1 + s tᵀ))) (P_G ⊗ P_A)ᵀ, and
/// for an R × C matrix V: M⁻¹ vec(V) = vec(P_G [(P_Gᵀ V P_A) ⊘ (1 + s tᵀ)] P_Aᵀ) — four products and a division.</para>
/// <para>Ĝ₁ and Â₁ come as the eigendecompositions of the undamped G₁, A₁ and the shifts added to their eigenvalues
/// (e = max(eigenvalue, 0) + shift, so a shift &gt; 0 keeps them positive definite). G₂ may be a diagonal (a length-R
/// vector). Eigenvalues s, t below 0 (round-off) are clamped to 0. Computed in the factors' dtype, with
/// <see cref="KroneckerEigenbasis.Decompose"/>'s float64 retry. Owns its tensors.</para>
/// </remarks>
internal sealed class KroneckerSumInverse : IDisposable
{
    private Tensor? _pg, _pa, _s, _t;

    public bool HasValue => _pg is not null;

    /// <summary>The damping λ the inverse was built for (NaN before the first build).</summary>
    public double Damping { get; private set; } = double.NaN;

    /// <summary>
    /// Builds P_G, s from G₁ = <paramref name="g1Basis"/> diag(<paramref name="g1Values"/>) <paramref name="g1Basis"/>ᵀ
    /// shifted by <paramref name="shiftG"/> and G₂ = <paramref name="g2"/> (matrix or diagonal), and P_A, t likewise, for λ
    /// = <paramref name="damping"/> (only remembered).
    /// </summary>
    public void Build(Tensor g1Values, Tensor g1Basis, double shiftG, Tensor g2,
                      Tensor a1Values, Tensor a1Basis, double shiftA, Tensor a2, double damping)
    {
        using var scope = NewDisposeScope();
        var (pg, s) = Side(g1Values, g1Basis, shiftG, g2);
        var (pa, t) = Side(a1Values, a1Basis, shiftA, a2);
        Dispose();
        _pg = pg.DetachFromDisposeScope();
        _s = s.DetachFromDisposeScope();
        _pa = pa.DetachFromDisposeScope();
        _t = t.DetachFromDisposeScope();
        Damping = damping;
    }

    /// <summary>P with Pᵀ (Q diag(e + shift) Qᵀ) P = I and Pᵀ X₂ P = diag(values), and those values.</summary>
    private static (Tensor P, Tensor Values) Side(Tensor values, Tensor basis, double shift, Tensor second)
    {
        var whitening = basis.mul(values.clamp_min(0).add_(shift).rsqrt_().unsqueeze(0));   // W = Q diag(e^{-1/2})
        var secondW = second.dim() == 1 ? whitening.mul(second.unsqueeze(1)) : second.mm(whitening);
        var c = whitening.t().mm(secondW);
        c = c.add(c.t()).mul_(0.5);                                                         // symmetric up to round-off
        var (e, u) = KroneckerEigenbasis.Decompose(c);
        return (whitening.mm(u), e);
    }

    /// <summary>M⁻¹ vec(V) = vec(P_G [(P_Gᵀ V P_A) ⊘ (1 + s tᵀ)] P_Aᵀ) for an R × C matrix V. Fresh tensor.</summary>
    public Tensor Apply(Tensor v)
    {
        if (_pg is null) throw new InvalidOperationException("the inverse of the Kronecker sum has not been built yet");
        using var scope = NewDisposeScope();
        var divisor = _s!.unsqueeze(1).mul(_t!.unsqueeze(0)).add_(1);
        var projected = _pg.t().mm(v).mm(_pa!).div_(divisor);
        return scope.MoveToOuter(_pg.mm(projected).mm(_pa!.t()));
    }

    /// <summary>The dense M⁻¹ (RC × RC), from the factors of the decomposition. Tests and small layers only.</summary>
    public Tensor Dense()
    {
        if (_pg is null) throw new InvalidOperationException("the inverse of the Kronecker sum has not been built yet");
        using var scope = NewDisposeScope();
        var p = kron(_pg.contiguous(), _pa!.contiguous());
        var d = _s!.unsqueeze(1).mul(_t!.unsqueeze(0)).add_(1).reciprocal_().reshape(1, -1);
        return scope.MoveToOuter(p.mul(d).mm(p.t()));
    }

    public void Dispose()
    {
        _pg?.Dispose(); _pa?.Dispose(); _s?.Dispose(); _t?.Dispose();
        _pg = _pa = _s = _t = null;
        Damping = double.NaN;
    }
}
