using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// The damped solve (w JᵀJ + λI)⁻¹ g of TENGraD through the n × n Gram matrix K = J Jᵀ, in a form whose error does not
/// grow as 1/λ when g lies in the row space of J (the usual case: every Fisher's gradient is a combination of the
/// per-sample gradients of the batch it was measured on).
/// </summary>
/// <remarks>
/// <para>With K = V diag(σ) Vᵀ (eigh, float64; <see cref="SymmetricEigh"/>: n a power of two ≥ 256 one wider) and
/// y = Vᵀ J g, split g = Jᵀc + r with c = V diag(1/σ) y over the numerically nonzero σ
/// (σ &gt; <see cref="RankTolerance"/>·n·ε·σ_max, ε = 2.2e-16), so that Jᵀc is g's projection on the row space and r the
/// rest. Then, by the push-through identity (w JᵀJ + λI)⁻¹ Jᵀ = Jᵀ (w JJᵀ + λI)⁻¹:</para>
/// <code>
///   Δ = Jᵀ V diag(1 / (σ (wσ + λ))) y  +  (r − Jᵀ V diag(1 / (λ/w + σ)) Vᵀ J r) / λ
/// </code>
/// <para>The first term has no subtraction and no 1/λ; the second is Woodbury applied to r alone, so its
/// cancellation error is relative to ‖r‖, not to ‖g‖. The plain Woodbury form (g − Jᵀ(λ/w + K)⁻¹ J g)/λ
/// (seed 000 eq 40) subtracts two vectors of size ‖g‖ that agree to 1 − O(λ), losing digits as 1/λ.</para>
/// <para>When ‖r‖ is at the round-off level of the split itself (‖r‖ ≤ <see cref="RowSpaceTolerance"/>·ε·‖g‖), g lies in the row space to working accuracy, r is round-off and is dropped; otherwise
/// (weight decay, a gradient from another batch) r is solved exactly as above.</para>
/// <para>Precision: always float64 (Ā and D are cast; for a float32 model the Gram matrix is re-formed in float64).
/// In float32 the split loses to round-off of Ā, D and K what it gains from avoiding cancellation (25 % error at
/// λ = 1e-6 on the issue-11 case, against 2.4 % when the float32 statistics are solved in float64; the rest is the
/// float32 gradient's own round-off).</para>
/// <para>Measured cost (bench `steps --quick`, two interleaved runs each, load average 30–45 on 2 cores, float32,
/// λ = 0.01): TENGraD's step on the 784-256-10 MLP, batch 256, took 325–360 ms against 87–123 ms with the float32
/// Woodbury form, and on the weather MLP [32,16], batch 128, 23–27 ms against 1.6–1.7 ms (the n × n float64 eigh per
/// layer dominates small layers). For float32 statistics <see cref="TengradBlock"/> therefore tries eq 40 first and
/// calls this split only when eq 40's estimated error is too large. An estimate linear in 1/λ (ε·w·tr(K)/λ) is not
/// enough for that decision: the measured error grows faster (1.3e-4 at λ = 1e-10 where it predicts ≤ 1e-5).</para>
/// <para>Cost beyond Woodbury: one n × n eigh instead of a Cholesky and one more J- and Jᵀ-product; no host sync
/// (both decisions are taken on the device).</para>
/// </remarks>
internal static class TengradSolve
{
    /// <summary>
    /// σ/σ_max below which an eigenvalue of K counts as zero, in units of n·ε: 1e3. On the issue-11 case the error at
    /// λ = 1e-12 was 3.3e-5 for factors 1e2 … 1e4 against 2.8e-4 at 1e6 and 5.6e-4 at 1 (c grows along barely resolved
    /// directions; 3.9e-5 at 1e3 with the split as written here).
    /// </summary>
    public const double RankTolerance = 1e3;

    /// <summary>‖r‖/‖g‖ below which r counts as round-off, in units of float64's ε: 1e3·ε.</summary>
    public const double RowSpaceTolerance = 1e3;

    /// <param name="activations">Ā (n × in').</param>
    /// <param name="outputGradients">D (n × out).</param>
    /// <param name="gram">K = J Jᵀ (n × n, unweighted, centred with the form), reused when it is float64.</param>
    /// <param name="centered">TONGA's centred form: J_c = P J, P = I − 11ᵀ/n.</param>
    /// <param name="weight">w in M = w JᵀJ.</param>
    /// <param name="damping">λ &gt; 0.</param>
    /// <param name="gradient">The W̄-shaped gradient (out × in').</param>
    /// <returns>Δ in float64 (the caller casts it to the gradient's dtype).</returns>
    public static Tensor Solve(Tensor activations, Tensor outputGradients, Tensor gram, bool centered, double weight, double damping, Tensor gradient)
    {
        using var scope = NewDisposeScope();
        const ScalarType f64 = ScalarType.Float64;
        const double eps = 2.220446049250313e-16;
        var a = activations.InDtype(f64);
        var d = outputGradients.InDtype(f64);
        Tensor Center(Tensor u) => centered ? u - u.mean() : u;
        Tensor Jv(Tensor v) => Center((d.mm(v) * a).sum(1));
        Tensor JTu(Tensor u) => (d * Center(u).unsqueeze(1)).t().mm(a);
        long n = a.size(0);

        var k = gram.dtype == f64 ? gram : a.mm(a.t()) * d.mm(d.t());
        if (centered && gram.dtype != f64)
            k = k - k.mean(new long[] { 0 }, keepdim: true) - k.mean(new long[] { 1 }, keepdim: true) + k.mean();
        k = (k + k.t()).mul_(0.5);
        // K is positive semi-definite by construction (the Hadamard product of the Grams ĀĀᵀ and DDᵀ; centred, P K P):
        // a power-of-two n is decomposed one wider without the order check's host read.
        var (sigma, v) = NativeCall.Run($"eigendecomposition (eigh) of the {n}×{n} TENGraD Gram matrix",
            () => SymmetricEigh.Of(k, semiDefinite: true), "the statistics hold ∞ or NaN or the Gram matrix is too ill-conditioned: raise the damping or use a float64 model");
        sigma = sigma.clamp_min(0);
        var keep = sigma.gt(sigma.max() * (RankTolerance * n * eps));
        var safeSigma = sigma.where(keep, ones_like(sigma));
        var g = gradient.InDtype(f64);
        var y = v.t().mv(Jv(g));
        var c = v.mv(y.div(safeSigma).where(keep, zeros_like(y)));                                     // Jᵀc = g's row-space part
        var rowCoefficients = v.mv(y.div(safeSigma * (safeSigma * weight + damping)).where(keep, zeros_like(y)));

        // r = g − Jᵀc: is it more than round-off (decided on the device: no host sync), and J r for Woodbury on r.
        // Built in an inner scope so that only one p-sized temporary is alive besides g.
        Tensor significant, jr;
        using (var inner = NewDisposeScope())
        {
            var r = g - JTu(c);
            significant = r.norm().gt(g.norm() * (RowSpaceTolerance * eps)).InDtype(f64).MoveToOuterDisposeScope();
            jr = Jv(r).MoveToOuterDisposeScope();
        }
        var z = v.mv(v.t().mv(jr).div(sigma + damping / weight));

        // Δ = Jᵀ(row coefficients) + s·(r − Jᵀz)/λ = Jᵀ(row coefficients − s·(c + z)/λ) + s·g/λ, s ∈ {0, 1}: one Jᵀ-product.
        var delta = JTu(rowCoefficients - significant * (c + z) / damping).add_(g * (significant / damping));
        return scope.MoveToOuter(delta);
    }
}
