using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// TENGraD (Soori et al. 2021; seed 000 appendix A.5): the exact damped block solve through the Woodbury
/// identity, never forming the n × p_l Jacobian. With M_l = w J_lᵀJ_l (w = 1/m for the empirical Fisher):
/// <code>
///   (M_l + λI)⁻¹ g = (1/λ) (g − J_lᵀ (λ/w · I + J_l J_lᵀ)⁻¹ J_l g)      seed 000 eq 40 (and eq 28)
///   J_l J_lᵀ = (Ā Āᵀ) ∘ (D Dᵀ)                                             eq 41 (Gram–Hadamard)
///   J_l g    = rowsum((D G) ∘ Ā)                                           eq 42
///   J_lᵀ u   = (D ∘ u)ᵀ Ā                                                  eq 43
/// </code>
/// with Ā (n × in') the activations and D (n × out) the output gradients of the n gradient samples.
/// With <see cref="MetricForm.Centered"/> (TONGA's covariance, seed 001 eq 12) the rows of J are centred,
/// J_c = P J with P = I − 11ᵀ/n, so J_cJ_cᵀ = P (J Jᵀ) P, J_c g = P (J g) and J_cᵀu = Jᵀ(P u): still no Jacobian.
/// Which solve runs, in order: (1) when the statistics come from the gradient's own backward pass (the empirical Fisher
/// of the default training path), the push-through form Δ = Jᵀ(wK + λI)⁻¹c·1 of <see cref="PushThroughIfAccurate"/>,
/// with no subtraction; (2) for float32 statistics, eq 40 in float32 when its estimated error (the subtraction's
/// condition number) is below 1e-3; (3) for float32 statistics of a rank-one layer whose gradient is the statistics'
/// mean gradient, the push-through form again in float64 (<see cref="PushThroughInFloat64"/>); (4) otherwise
/// <see cref="TengradSolve"/>: eq 40's subtraction replaced by an eigendecomposition split that keeps its accuracy at
/// small λ (float64).
/// Cost O(n² (in' + out) + n³ + n p_l); memory O(n² + n (in' + out)) for rank-one layers (Linear on m × d inputs).
/// Layers applied at T &gt; 1 positions and elementwise layers use <see cref="LayerJacobian"/> for J Jᵀ (summed over
/// position pairs, or J formed for LayerNorm/BatchNorm's 2·features parameters), J g and Jᵀu: solve (1) applies to
/// them as is; when it does not, they take eq 40 (solve (3) is for rank-one layers only).
/// </summary>
public sealed class TengradBlock : ICurvatureBlock
{
    private readonly MetricForm _form;
    private Tensor? _a, _d, _gram;
    private LayerJacobian? _general;
    private LayerStatistics? _statistics;
    private double _weight;
    private long _parameterCount = 1;

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

    public TengradBlock(MetricForm form = MetricForm.Uncentered) => _form = form;

    /// <summary>P u = u − mean(u) for the centred form; u otherwise.</summary>
    private Tensor Center(Tensor u) => _form == MetricForm.Centered ? u - u.mean() : u;

    public void Update(LayerStatistics statistics, long step)
    {
        _pushThroughRejectedAt = double.NaN;
        _rejectedFactor = null;
        _weight = statistics.Weight;
        _statistics = statistics;
        _parameterCount = statistics.Adapter.ParameterCount;
        Tensor gram;
        if (statistics.IsRankOne)
        {
            _general = null;
            _a = statistics.PairedActivations().squeeze(1);   // n × in'
            _d = statistics.FlatOutputGradients().squeeze(1); // n × out
            gram = _a.mm(_a.t()) * _d.mm(_d.t());              // eq 41
        }
        else
        {
            _general = new LayerJacobian(statistics);
            _a = _d = null;
            gram = _general.Gram;
        }
        if (_form == MetricForm.Centered)
            gram = gram - gram.mean(new long[] { 0 }, keepdim: true) - gram.mean(new long[] { 1 }, keepdim: true) + gram.mean();
        _gram = gram;
    }

    private void EnsureUpdated()
    {
        if (_gram is null) throw new InvalidOperationException("the block has no statistics yet: call Update first");
    }

    /// <summary>J g for a W̄-shaped g (eq 42): n.</summary>
    private Tensor Jv(Tensor g) => Center(_general is not null ? _general.Multiply(g) : (_d!.mm(g) * _a!).sum(1));

    /// <summary>Jᵀ u for u of length n (eq 43): W̄-shaped.</summary>
    private Tensor JTu(Tensor u, Tensor like) =>
        _general is not null ? _general.TransposeMultiply(Center(u), like) : (_d! * Center(u).unsqueeze(1)).t().mm(_a!);

    public Tensor Precondition(Tensor gradient, double damping)
    {
        EnsureUpdated();
        if (!(damping > 0))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, "TENGraD needs damping > 0 (its Woodbury form divides by λ)");
        var g = gradient.InDtype(_gram!.dtype);
        var pushed = PushThroughIfAccurate(g, damping);
        if (pushed is not null) return pushed.InDtype(gradient.dtype);
        if (_general is not null)
        {
            var system = _gram.clone();
            system.diagonal().add_(damping / _weight);             // λ/w · I added in place: no identity matrix
            var u = SafeCholesky.Solve(system, Jv(g));
            return ((g - JTu(u, g)) / damping).InDtype(gradient.dtype);
        }
        var woodbury = WoodburyIfAccurate(g, damping);
        if (woodbury is not null) return woodbury.InDtype(gradient.dtype);
        if (PushThroughInFloat64(g, damping) is { } pushed64) return pushed64.InDtype(gradient.dtype);
        return TengradSolve.Solve(_a!, _d!, _gram, _form == MetricForm.Centered, _weight, damping, g).InDtype(gradient.dtype);
    }

    /// <summary>
    /// Relative error of eq 40 in float32 above which the float64 split of <see cref="TengradSolve"/> is used: 1e-3, below the sampling noise of any one-batch Fisher.
    /// </summary>
    public const double Float32WoodburyTolerance = 1e-3;

    /// <summary>
    /// Eq 40 in the statistics' dtype (float32 models only; float64 models always take the split), kept when its
    /// estimated relative error is below <see cref="Float32WoodburyTolerance"/>; otherwise null. The estimate is the
    /// subtraction's condition number times the error of its operands:
    /// <code>
    ///   err ≈ ε (‖g‖ + (1 + κ) ‖Jᵀu‖) / ‖g − Jᵀu‖,   κ = 1 + w tr(K)/λ ≥ cond(K + λ/w I)
    /// </code>
    /// (the Cholesky's u carries a relative error up to ε κ, and g − Jᵀu cancels to 1 − O(λ) at small λ). One host
    /// read of four scalars per layer decides between the two solves.
    /// </summary>
    private static long _woodburySolves;

    /// <summary>How many solves in this process took eq 40 in float32 (for tests of the dispatch).</summary>
    internal static long WoodburySolves => Interlocked.Read(ref _woodburySolves);

    private Tensor? WoodburyIfAccurate(Tensor g, double damping)
    {
        if (_gram!.dtype != ScalarType.Float32) return null;
        using var scope = NewDisposeScope();
        Tensor u;
        if (_pushThroughRejectedAt == damping && _rejectedFactor is { IsInvalid: false } factor)
        {
            Interlocked.Increment(ref _factorReuses);   // (K + λ/w I)⁻¹ J g = w (w K + λI)⁻¹ J g, in float64
            u = cholesky_solve(Jv(g).to_type(ScalarType.Float64).unsqueeze(1), factor).squeeze(1).mul_(_weight).InDtype(g.dtype);
        }
        else
        {
            var system = _gram.clone();
            system.diagonal().add_(damping / _weight);
            u = SafeCholesky.Solve(system, Jv(g));
        }
        var jtu = JTu(u, g);
        var rest = g - jtu;
        var norms = HostRead.Doubles(stack(new[] { g.norm(), jtu.norm(), rest.norm(), _gram.diagonal().sum() }).to_type(ScalarType.Float64));
        double kappa = 1 + _weight * Math.Abs(norms[3]) / damping;
        const double eps = 1.1920929e-7;
        double estimate = eps * (norms[0] + (1 + kappa) * norms[1]) / norms[2];
        if (!(estimate <= Float32WoodburyTolerance)) return null;
        Interlocked.Increment(ref _woodburySolves);
        return scope.MoveToOuter(rest.div_(damping));
    }

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
        if (_statistics?.GradientWeight is not double c || _form == MetricForm.Centered || PushThrough(c, g, g, damping) is not { } solved)
            return null;
        solved.U.Dispose();   // u is read only by the inner product of the mean-gradient route
        return solved.Delta;
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
    /// ⟨Δ, ḡ⟩ = ⟨Jᵀu, Jᵀ(w·1)⟩ = w·1ᵀK u from the n × n Gram the solve already has (n² flops, no product with ḡ).
    /// </summary>
    public MeanGradientDirection? PreconditionMeanGradient(LayerStatistics statistics, double damping, bool innerProduct)
    {
        EnsureUpdated();
        if (!ReferenceEquals(statistics, _statistics) || _general is not null || _form == MetricForm.Centered || statistics.Samples != 1 || !(damping > 0))
            return null;
        if (PushThrough(statistics.Weight, null, _a!, damping) is not { } solved) return null;
        Interlocked.Increment(ref _meanGradientSolves);
        Tensor? inner = null;
        if (innerProduct)
        {
            using var scope = NewDisposeScope();
            inner = scope.MoveToOuter(_gram!.InDtype(ScalarType.Float64).mv(solved.U).sum().mul_(statistics.Weight));
        }
        solved.U.Dispose();
        return new MeanGradientDirection(solved.Delta, inner);
    }

    private static long _meanGradientSolves;

    /// <summary>How many solves in this process took <see cref="PreconditionMeanGradient(LayerStatistics, double)"/> (for tests of the route).</summary>
    internal static long MeanGradientSolves => Interlocked.Read(ref _meanGradientSolves);

    /// <summary>
    /// The push-through solve for g = Jᵀ(c·1) + r; with <paramref name="g"/> null, r = 0 is known and not formed. Δ and
    /// u = (w K + λI)⁻¹ c·1 (float64), both in the caller's dispose scope (the caller disposes u when done with it), or
    /// null when a check fails.
    /// </summary>
    /// <param name="c">The gradient weight of the statistics (1/m for the mean loss).</param>
    /// <param name="g">The W̄-shaped gradient, or null for the statistics' own mean gradient.</param>
    /// <param name="damping">λ &gt; 0.</param>
    /// <param name="like">A tensor of the statistics' dtype (and W̄'s shape for layers that are not rank-one).</param>
    private (Tensor Delta, Tensor U)? PushThrough(double c, Tensor? g, Tensor like, double damping)
    {
        if (_pushThroughRejectedAt == damping) return null;
        Interlocked.Increment(ref _pushThroughFactorizations);
        using var scope = NewDisposeScope();
        const ScalarType f64 = ScalarType.Float64;
        long n = _gram!.size(0);
        var (factor, info, u, kii, rowBound) = SolvePushThroughSystem(_gram, c, damping);
        var delta = JTu(u.InDtype(like.dtype), like);
        if (g is null)
        {
            // r = 0 is known: only the factorisation and the rounding bound decide (one host read of three scalars).
            var read = HostRead.Doubles(stack(new[] { info.InDtype(f64), rowBound, delta.norm().InDtype(f64) }));
            if (read[0] != 0) return Rejected(damping);
            if (!RoundingBoundHolds(n, like.dtype, read[1], read[2])) return Rejected(damping, scope.MoveToOuter(factor));
            Interlocked.Increment(ref _pushThroughSolves);
            return (scope.MoveToOuter(delta), scope.MoveToOuter(u));
        }
        var rest = g - (_general is not null ? _general.TransposeMultiply(full(n, c, dtype: g.dtype), g) : _d!.t().mm(_a!).mul_(c));
        // One host read: the Cholesky's info, Σᵢ |uᵢ| ‖Jᵢ‖, ‖Δ‖, ‖g‖, ‖r‖ and tr K (one read instead of one per decision).
        var norms = HostRead.Doubles(stack(new[] { info.InDtype(f64), rowBound, delta.norm().InDtype(f64), g.norm().InDtype(f64), rest.norm().InDtype(f64), kii.sum() }));
        // A failed factorisation means w K + λI is singular to working precision at this λ: a jittered factor would solve
        // another system, so the solves that handle a singular K (eq 40 on its own terms, or the eigendecomposition split) take over.
        if (norms[0] != 0) return Rejected(damping);
        if (!RoundingBoundHolds(n, like.dtype, norms[1], norms[2])) return Rejected(damping, scope.MoveToOuter(factor));
        if (!RestIsNegligible(n, like.dtype, norms[3], norms[4], c, norms[5], norms[2], damping))
        {
            var jr = Jv(rest).InDtype(f64);
            var z = cholesky_solve(jr.unsqueeze(1), factor).squeeze(1).mul_(_weight);
            delta.add_(rest.sub_(JTu(z.InDtype(like.dtype), like)).div_(damping));
        }
        Interlocked.Increment(ref _pushThroughSolves);
        return (scope.MoveToOuter(delta), scope.MoveToOuter(u));
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
    /// and the rounding bound's Σᵢ |uᵢ| ‖Jᵢ‖, for the n × n Gram <paramref name="gram"/> in any floating dtype.
    /// </summary>
    private (Tensor Factor, Tensor Info, Tensor U, Tensor Diagonal, Tensor WeightedRowSum) SolvePushThroughSystem(Tensor gram, double c, double damping)
    {
        const ScalarType f64 = ScalarType.Float64;
        var system = gram.InDtype(f64).mul(_weight);   // not in place: for a float64 Gram to_type returns the Gram itself
        system.diagonal().add_(damping);
        var (factor, info) = linalg.cholesky_ex(system);
        var u = cholesky_solve(full(gram.size(0), 1, c, dtype: f64), factor).squeeze(1);
        var kii = gram.diagonal().InDtype(f64);
        return (factor, info, u, kii, u.abs().dot(kii.clamp_min(0).sqrt()));
    }

    private static long _factorReuses;

    /// <summary>How many eq 40 solves in this process reused a rejected push-through solve's factor (for tests).</summary>
    internal static long FactorReuses => Interlocked.Read(ref _factorReuses);

    private (Tensor Delta, Tensor U)? Rejected(double damping, Tensor? factor = null)
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

    public Tensor Multiply(Tensor v)
    {
        EnsureUpdated();
        var x = v.InDtype(_gram!.dtype);
        return JTu(Jv(x), x).mul(_weight).InDtype(v.dtype);
    }

    /// <summary>tr(M_l) / p_l = w tr(J Jᵀ) / p_l, from the Gram's diagonal.</summary>
    public double MeanCurvature()
    {
        EnsureUpdated();
        return _gram!.diagonal().sum().ToDouble() * _weight / _parameterCount;
    }

    /// <summary>vᵀ(w JᵀJ)v = w ‖J v‖²: one product with J (eq 42) instead of the two of <see cref="Multiply"/>.</summary>
    public Tensor QuadraticForm(Tensor v)
    {
        EnsureUpdated();
        return Jv(v.InDtype(_gram!.dtype)).square().sum(ScalarType.Float64).mul(_weight);
    }

    public Tensor ToDense()
    {
        EnsureUpdated();
        var j = _general is not null ? _general.Dense() : (_d!.unsqueeze(2) * _a!.unsqueeze(1)).reshape(_d!.size(0), -1); // tests only: n × p
        if (_form == MetricForm.Centered) j = j - j.mean(new long[] { 0 }, keepdim: true);
        return j.t().mm(j).mul(_weight);
    }

    public void Dispose()
    {
        _a = _d = _gram = null;
        _general = null;
        _statistics = null;
    }
}
