using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// TENGraD's push-through solve Δ = Jᵀ (wK + λI)⁻¹ c·1 for a gradient known to be Jᵀ(c·1) + r (the empirical Fisher
/// of the gradient's own backward pass), its mean-gradient route and ⟨Δ, ḡ⟩ for the KL clip, its float64 fallback, and
/// the checks that decide when the other solves of <see cref="TengradBlock"/> take over.
/// </summary>
public sealed partial class TengradBlock
{
    /// <summary>
    /// The damping at which the push-through solve of the current statistics failed its checks (NaN: none). The checks
    /// (the Cholesky's info and the rounding bound on Δ = Jᵀu) depend only on the statistics and λ, so a second attempt
    /// at the same λ — <see cref="Precondition"/> after <see cref="PreconditionMeanGradient(LayerStatistics, double)"/> declined — goes straight
    /// to the other solves instead of factoring w K + λI again.
    /// </summary>
    private double _pushThroughRejectedAt = double.NaN;

    /// <summary>
    /// The float64 Cholesky factor of w K + λI from a push-through solve that failed only its rounding bound, for eq 40
    /// at the same λ (<see cref="WoodburyIfAccurate"/>: (K + λ/w I)⁻¹ = w (w K + λI)⁻¹, no second factorisation). It
    /// lives in the dispose scope of the call that made it, like the statistics: used only while still valid.
    /// </summary>
    private Tensor? _rejectedFactor;

    /// <summary>
    /// Relative error of the push-through solve above which the other solves are used: 1e-3 for float32 statistics
    /// (below the sampling noise of any one-batch Fisher), 1e-9 for float64.
    /// </summary>
    public const double PushThroughTolerance32 = 1e-3, PushThroughTolerance64 = 1e-9;

    private static long _pushThroughSolves, _pushThroughFactorizations;

    /// <summary>How many times this process factored w K + λI for the push-through solve (for tests of its reuse).</summary>
    internal static long PushThroughFactorizations => Interlocked.Read(ref _pushThroughFactorizations);

    /// <summary>How many solves in this process took the push-through form (for tests of the dispatch).</summary>
    internal static long PushThroughSolves => Interlocked.Read(ref _pushThroughSolves);

    /// <summary>
    /// The solve for a gradient known to be g = Jᵀ(c·1) + r, c = <see cref="LayerStatistics.GradientWeight"/> (the
    /// empirical Fisher measured by the gradient's own backward pass), by the push-through identity
    /// (w JᵀJ + λI)⁻¹ Jᵀ = Jᵀ (w JJᵀ + λI)⁻¹:
    /// <code>
    ///   Δ = Jᵀ u,  u = (w K + λI)⁻¹ c·1                      (no subtraction, no 1/λ: accurate at any λ)
    ///     + (r − Jᵀ w (w K + λI)⁻¹ J r) / λ                  (eq 40 on r = g − c Jᵀ1, only when r exceeds round-off)
    /// </code>
    /// r is the part of g that the rows do not explain: weight decay added to the gradient, a penalty term in the loss,
    /// a gradient rescaled by clipping. The n × n system is factored in float64 (O(n³/3), no eigendecomposition);
    /// J-products stay in the statistics' dtype. Cost: the Gram (already formed), one Cholesky, c Jᵀ1 (one GEMM, to
    /// find r) and Jᵀu (one GEMM) — the products of eq 40, without its cancellation. One host read of six scalars
    /// per layer (norms, tr K and the Cholesky's info) takes the decisions: whether r may be left out
    /// (<see cref="RestIsNegligible"/>: within round-off and moving Δ by less than a tenth of the tolerance), and whether
    /// the Jᵀu product is accurate,
    /// √n ε Σᵢ |uᵢ| ‖Jᵢ‖ / ‖Δ‖ ≤ tolerance, ‖Jᵢ‖ = √Kᵢᵢ (the rounding bound of the sum Σᵢ uᵢ Jᵢ: the entries of
    /// Σᵢ |uᵢ| |dᵢ| |āᵢ|ᵀ have Frobenius norm ≤ Σᵢ |uᵢ| ‖dᵢ‖ ‖āᵢ‖). It is large only when large terms uᵢJᵢ cancel, i.e. K
    /// nearly singular along directions u weighs heavily; an example with a tiny gradient and a large uᵢ adds a small
    /// term and does not count against it. When it is large: null, and the caller falls back to eq 40, then (float32
    /// statistics of a rank-one layer) to this solve in float64 (<see cref="PushThroughInFloat64"/>), then to
    /// <see cref="TengradSolve"/>'s eigendecomposition.
    /// Not used for TONGA's centred form (centring removes the mean gradient from the row space) or when c is unknown.
    /// </summary>
    private Tensor? PushThroughIfAccurate(Tensor g, double damping)
    {
        return _statistics?.GradientWeight is not double c || _form == MetricForm.Centered ? null : PushThrough(c, g, damping);
    }

    /// <summary>
    /// Δ for the mean gradient of the last update's own statistics, g = w Σᵢ gᵢ = Jᵀ(w·1), which the caller guarantees
    /// (<see cref="NaturalGradient.Optim.NaturalGradientDescent"/>: the empirical Fisher from its loss's own backward, no
    /// weight decay, one process): the push-through solve without forming g − Jᵀ(w·1), one J-product fewer than
    /// <see cref="Precondition"/>. Null for other statistics, layers that are not rank-one, the centred form, or when the
    /// rounding bound fails (the caller then solves g itself).
    /// </summary>
    public Tensor? PreconditionMeanGradient(LayerStatistics statistics, double damping) =>
        PreconditionMeanGradient(statistics, damping, innerProduct: false)?.Direction;

    /// <summary>
    /// As <see cref="PreconditionMeanGradient(LayerStatistics, double)"/>; with <paramref name="innerProduct"/>, also
    /// ⟨Δ, ḡ⟩ = ⟨Jᵀu, Jᵀ(w·1)⟩ = w·1ᵀK u from the n × n Gram the solve already has (n² flops, no product with ḡ). The
    /// solve of <see cref="PreconditionMeanGradients"/> for this layer alone.
    /// </summary>
    public MeanGradientDirection? PreconditionMeanGradient(LayerStatistics statistics, double damping, bool innerProduct)
    {
        EnsureUpdated();
        if (_parameterMatrix is not null)
            return RoutesMeanGradient(statistics, damping) ? ParameterSpaceMeanGradient(statistics, damping, innerProduct) : null;
        return PushesMeanGradient(statistics, damping) ? SolveBatch(new[] { this }, new[] { statistics.Weight }, new[] { damping }, innerProduct)[0] : null;
    }

    private static long _meanGradientSolves;

    /// <summary>How many solves in this process took <see cref="PreconditionMeanGradient(LayerStatistics, double)"/> (for tests of the route).</summary>
    internal static long MeanGradientSolves => Interlocked.Read(ref _meanGradientSolves);

    /// <summary>
    /// The push-through solve for g = Jᵀ(c·1) + r: Δ in the caller's dispose scope, or null when a check fails. (For the
    /// statistics' own mean gradient, r = 0 is known: <see cref="SolveBatch"/> solves it without forming r.)
    /// </summary>
    /// <param name="c">The gradient weight of the statistics (1/m for the mean loss).</param>
    /// <param name="g">The W̄-shaped gradient, in the statistics' dtype.</param>
    /// <param name="damping">λ &gt; 0.</param>
    private Tensor? PushThrough(double c, Tensor g, double damping)
    {
        if (_pushThroughRejectedAt == damping) return null;
        Interlocked.Increment(ref _pushThroughFactorizations);
        using var scope = NewDisposeScope();
        const ScalarType f64 = ScalarType.Float64;
        long n = _gram!.size(0);
        var (factor, info, u, kii, rowBound) = SolvePushThroughSystem(_gram, c, damping);
        var delta = JTu(u.InDtype(g.dtype), g);
        var rest = g - (_general is not null ? _general.TransposeMultiply(full(n, c, dtype: g.dtype), g) : _d!.t().mm(_a!).mul_(c));
        // One host read: the Cholesky's info, Σᵢ |uᵢ| ‖Jᵢ‖, ‖Δ‖, ‖g‖, ‖r‖ and tr K (one read instead of one per decision).
        var norms = HostRead.Doubles(stack(new[] { info.InDtype(f64), rowBound, delta.norm().InDtype(f64), g.norm().InDtype(f64), rest.norm().InDtype(f64), kii.sum() }));
        // A failed factorisation means w K + λI is singular to working precision at this λ: a jittered factor would solve
        // another system, so the solves that handle a singular K (eq 40 on its own terms, or the eigendecomposition split) take over.
        if (norms[0] != 0) return Rejected(damping);
        if (!RoundingBoundHolds(n, g.dtype, norms[1], norms[2])) return Rejected(damping, scope.MoveToOuter(factor));
        if (!RestIsNegligible(n, g.dtype, norms[3], norms[4], c, norms[5], norms[2], damping))
        {
            var jr = Jv(rest).InDtype(f64);
            var z = CholeskySolve.Apply(factor, jr.unsqueeze(1)).squeeze(1).mul_(_weight);
            delta.add_(rest.sub_(JTu(z.InDtype(g.dtype), g)).div_(damping));
        }
        Interlocked.Increment(ref _pushThroughSolves);
        return scope.MoveToOuter(delta);
    }

    /// <summary>
    /// The push-through solve in float64, for a rank-one layer with float32 statistics when neither the float32
    /// push-through solve nor eq 40 passed its accuracy check (large terms uᵢJᵢ cancel, so the float32 rounding of K, of
    /// u and of the product Jᵀu is amplified): Ā, D and g convert to float64 exactly, K = (ĀĀᵀ) ∘ (DDᵀ) is formed,
    /// factored and solved, and Δ = Jᵀu is formed in float64. Taken only when g is the statistics' mean gradient to
    /// float32 accuracy (r = g − c Jᵀ1 negligible by <see cref="RestIsNegligible"/>; otherwise r needs the split) and under the
    /// float64 model's own acceptance (the Cholesky succeeds and √n ε₆₄ Σᵢ |uᵢ| ‖Jᵢ‖ / ‖Δ‖ ≤ <see cref="PushThroughTolerance64"/>),
    /// read together once; null otherwise. Cost: an n × n float64 Gram, Cholesky and solve and two float64 GEMMs of the
    /// layer's size, in place of the split's eigendecomposition (n = 128, two threads: 0.17 ms for the Cholesky against
    /// 1.5 ms for eigh; the bench's <c>perf --part kernels</c>).
    /// </summary>
    private Tensor? PushThroughInFloat64(Tensor g, double damping)
    {
        if (_general is not null || _gram!.dtype != ScalarType.Float32 || _form == MetricForm.Centered || _statistics?.GradientWeight is not double c)
            return null;
        using var scope = NewDisposeScope();
        const ScalarType f64 = ScalarType.Float64;
        var a = _a!.to_type(f64);
        var d = _d!.to_type(f64);
        long n = a.size(0);
        var (_, info, u, kii, rowBound) = SolvePushThroughSystem(a.mm(a.t()).mul_(d.mm(d.t())), c, damping);
        var delta = (d * u.unsqueeze(1)).t().mm(a);
        var g64 = g.to_type(f64);
        var rest = g64 - d.t().mm(a).mul_(c);
        var read = HostRead.Doubles(stack(new[] { info.InDtype(f64), rowBound, delta.norm(), g64.norm(), rest.norm(), kii.sum() }));
        if (read[0] != 0 || !RoundingBoundHolds(n, f64, read[1], read[2])) return null;
        if (!RestIsNegligible(n, ScalarType.Float32, read[3], read[4], c, read[5], read[2], damping)) return null;
        Interlocked.Increment(ref _float64PushThroughSolves);
        return scope.MoveToOuter(delta.to_type(g.dtype));
    }

    private static long _float64PushThroughSolves;

    /// <summary>How many solves in this process took <see cref="PushThroughInFloat64"/> (for tests of the dispatch).</summary>
    internal static long Float64PushThroughSolves => Interlocked.Read(ref _float64PushThroughSolves);

    /// <summary>
    /// The push-through system in float64: the Cholesky factor of w K + λI and its info, u = (w K + λI)⁻¹ c·1, Kᵢᵢ = ‖Jᵢ‖²
    /// and the rounding bound's Σᵢ |uᵢ| ‖Jᵢ‖, for the n × n Gram <paramref name="gram"/> in any floating dtype: by
    /// <see cref="DampedGramSystems"/> where it applies (the CPU, n ≤ 256: the batched solve's arithmetic, as a batch of
    /// one), otherwise by tensor operations.
    /// </summary>
    private (Tensor Factor, Tensor Info, Tensor U, Tensor Diagonal, Tensor WeightedRowSum) SolvePushThroughSystem(Tensor gram, double c, double damping)
    {
        const ScalarType f64 = ScalarType.Float64;
        var grams = new[] { gram };
        if (DampedGramSystems.Applies(grams))
        {
            long order = gram.size(0);
            var factors = empty(1, order, order, dtype: f64);
            var (infos, us, weighted, _) = DampedGramSystems.Solve(grams, new[] { _weight }, new[] { damping }, new[] { c }, factors);
            return (factors[0].mT, tensor(infos[0]), tensor(us), gram.diagonal().InDtype(f64), tensor(weighted[0]));
        }
        var system = gram.InDtype(f64).mul(_weight);   // not in place: for a float64 Gram to_type returns the Gram itself
        system.diagonal().add_(damping);
        var (factor, info) = SmallCholesky.Factor(system, overwrite: true);
        var u = CholeskySolve.Apply(factor, full(gram.size(0), 1, c, dtype: f64)).squeeze(1);
        var kii = gram.diagonal().InDtype(f64);
        return (factor, info, u, kii, u.abs().dot(kii.clamp_min(0).sqrt()));
    }

    private static long _factorReuses;

    /// <summary>How many eq 40 solves in this process reused a rejected push-through solve's factor (for tests).</summary>
    internal static long FactorReuses => Interlocked.Read(ref _factorReuses);

    private Tensor? Rejected(double damping, Tensor? factor = null)
    {
        _pushThroughRejectedAt = damping;
        _rejectedFactor = factor;
        return null;
    }

    private static double Epsilon(ScalarType dtype) => dtype == ScalarType.Float32 ? 1.1920929e-7 : 2.220446049250313e-16;

    private static double Tolerance(ScalarType dtype) => dtype == ScalarType.Float32 ? PushThroughTolerance32 : PushThroughTolerance64;

    /// <summary>
    /// Whether r = g − c Jᵀ1 may be left out of Δ: ‖r‖ within the round-off of g, 10 √n ε (‖g‖ + c √(n tr K)), and its
    /// effect on Δ within the tolerance of <paramref name="dtype"/>: the term left out, (w JᵀJ + λI)⁻¹ r, has norm at
    /// most ‖r‖/λ (its part outside J's row space is r/λ itself), so ‖r‖ ≤ tolerance/10 · λ ‖Δ‖ is required too (a tenth
    /// of the tolerance, the rest left to the solve's rounding). At small λ an r at round-off level (a tiny weight decay or
    /// penalty) moves Δ far more than the tolerance.
    /// </summary>
    private static bool RestIsNegligible(long n, ScalarType dtype, double gradientNorm, double restNorm, double c, double traceK, double deltaNorm, double damping) =>
        restNorm <= 10 * Math.Sqrt(n) * Epsilon(dtype) * (gradientNorm + c * Math.Sqrt(n * Math.Max(traceK, 0)))
        && restNorm <= 0.1 * Tolerance(dtype) * damping * deltaNorm;

    /// <summary>√n ε Σᵢ |uᵢ| ‖Jᵢ‖ / ‖Δ‖ within the push-through tolerance of <paramref name="dtype"/> (false for a non-finite bound).</summary>
    private static bool RoundingBoundHolds(long n, ScalarType dtype, double weightedRowSum, double deltaNorm) =>
        double.IsFinite(weightedRowSum)
        && Math.Sqrt(n) * Epsilon(dtype) * weightedRowSum / deltaNorm <= Tolerance(dtype);
}
