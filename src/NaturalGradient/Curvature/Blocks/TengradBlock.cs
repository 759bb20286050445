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
/// A dense layer whose p_l × p_l system costs fewer multiply-adds than the n × n one (a small output head) is solved in
/// parameter space instead, by a p_l × p_l Cholesky of the same damped block (<see cref="SolvesInParameterSpace"/>); for the others,
/// which solve runs, in order: (1) when the statistics come from the gradient's own backward pass (the empirical Fisher
/// of the default training path), the push-through form Δ = Jᵀ(wK + λI)⁻¹c·1 of <see cref="PushThroughIfAccurate"/>,
/// with no subtraction (for the statistics' own mean gradient, <see cref="BlockDiagonalCurvature"/> solves the layers that
/// share n as one batch: <see cref="PreconditionMeanGradients"/>); (2) for float32 statistics, eq 40 in float32 when its estimated error (the subtraction's
/// condition number) is below 1e-3; (3) for float32 statistics of a rank-one layer whose gradient is the statistics'
/// mean gradient, the push-through form again in float64 (<see cref="PushThroughInFloat64"/>); (4) otherwise
/// <see cref="TengradSolve"/>: eq 40's subtraction replaced by an eigendecomposition split that keeps its accuracy at
/// small λ (float64).
/// Cost O(n² (in' + out) + n³ + n p_l); memory O(n² + n (in' + out)) for rank-one layers (Linear on m × d inputs).
/// Layers applied at T &gt; 1 positions and elementwise layers use <see cref="LayerJacobian"/> for J Jᵀ (summed over
/// position pairs, or J formed for LayerNorm/BatchNorm's 2·features parameters), J g and Jᵀu: solve (1) applies to
/// them as is; when it does not, they take eq 40 (solve (3) is for rank-one layers only).
/// </summary>
public sealed partial class TengradBlock : ICurvatureBlock
{
    private readonly MetricForm _form;
    private Tensor? _a, _d, _gram;
    /// <summary>Dᵀ (out × n), the view the Gram's DDᵀ makes, kept for Jᵀu of the same step (one view fewer per solve).</summary>
    private Tensor? _dT;
    private LayerJacobian? _general;
    private LayerStatistics? _statistics;
    private double _weight;
    private long _parameterCount = 1;

    public TengradBlock(MetricForm form = MetricForm.Uncentered) => _form = form;

    /// <summary>P u = u − mean(u) for the centred form; u otherwise.</summary>
    private Tensor Center(Tensor u) => _form == MetricForm.Centered ? u - u.mean() : u;

    public void Update(LayerStatistics statistics, long step)
    {
        UpdateRows(statistics);
        if (_a is not null) FormOwnGram();
    }

    /// <summary>
    /// <see cref="Update"/> without forming a rank-one layer's Gram: the caller forms it, for this block alone
    /// (<see cref="FormOwnGram"/>) or batched with other layers of its shape (<see cref="FormGrams"/>), before any solve.
    /// </summary>
    private void UpdateRows(LayerStatistics statistics)
    {
        _gramBatch = null;
        _pushThroughRejectedAt = double.NaN;
        _rejectedFactor = null;
        _weight = statistics.Weight;
        _statistics = statistics;
        _parameterCount = statistics.Adapter.ParameterCount;
        _parameterMatrix = _meanGradient = null;
        if (SolvesInParameterSpace(statistics))
        {
            _general = null;
            _a = _d = _dT = _gram = null;
            UpdateParameterSpace(statistics);
            return;
        }
        _gram = null;
        if (statistics.IsRankOne)
        {
            _general = null;
            _a = statistics.PairedActivationRows();   // n × in'
            _d = statistics.OutputGradientRows();     // n × out
            _dT = _d.t();
        }
        else
        {
            _general = new LayerJacobian(statistics);
            _a = _d = _dT = null;
            SetGram(_general.Gram);
        }
    }

    /// <summary>
    /// The rank-one layer's Gram K = (ĀĀᵀ) ∘ (DDᵀ) (eq 41), n × n, formed for this block alone: on the calling thread by
    /// <see cref="RowGram"/> for the small layers it takes, else by two GEMMs and a product in place.
    /// </summary>
    private void FormOwnGram() => SetGram(RowGram.Applies(_a!, _d!) ? RowGram.Form(_a!, _d!) : _a!.mm(_a!.t()).mul_(_d!.mm(_dT!)));

    /// <summary>Keeps <paramref name="gram"/> (J Jᵀ) as the block's Gram, centred for <see cref="MetricForm.Centered"/> (P J Jᵀ P).</summary>
    private void SetGram(Tensor gram)
    {
        if (_form == MetricForm.Centered)
            gram = gram - gram.mean(new long[] { 0 }, keepdim: true) - gram.mean(new long[] { 1 }, keepdim: true) + gram.mean();
        _gram = gram;
    }

    /// <summary>The statistics of the last <see cref="Update"/> (null before it; for tests).</summary>
    internal LayerStatistics? Statistics => _statistics;

    private void EnsureUpdated()
    {
        if (_gram is null && _parameterMatrix is null)
            throw new InvalidOperationException(_a is null ? "the block has no statistics yet: call Update first" : "the block's Gram was not formed after its update");
    }

    /// <summary>J g for a W̄-shaped g (eq 42): n.</summary>
    private Tensor Jv(Tensor g) => Center(_general is not null ? _general.Multiply(g) : (_d!.mm(g) * _a!).sum(1));

    /// <summary>Jᵀ u for u of length n (eq 43): W̄-shaped.</summary>
    private Tensor JTu(Tensor u, Tensor like) =>
        _general is not null ? _general.TransposeMultiply(Center(u), like) : _dT!.mul(Center(u)).mm(_a!);   // (D ∘ u1ᵀ)ᵀĀ

    public Tensor Precondition(Tensor gradient, double damping)
    {
        EnsureUpdated();
        if (!(damping > 0))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, "TENGraD needs damping > 0 (its Woodbury form divides by λ)");
        if (_parameterMatrix is not null) return PreconditionInParameterSpace(gradient, damping);
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
            u = CholeskySolve.Apply(factor, Jv(g).to_type(ScalarType.Float64).unsqueeze(1)).squeeze(1).mul_(_weight).InDtype(g.dtype);
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

    public Tensor Multiply(Tensor v)
    {
        EnsureUpdated();
        if (_parameterMatrix is not null) return _parameterMatrix.mv(v.flatten().to_type(ScalarType.Float64)).reshape(v.Sizes()).to_type(v.dtype);
        var x = v.InDtype(_gram!.dtype);
        return JTu(Jv(x), x).mul(_weight).InDtype(v.dtype);
    }

    /// <summary>tr(M_l) / p_l = w tr(J Jᵀ) / p_l, from the Gram's diagonal.</summary>
    public double MeanCurvature()
    {
        EnsureUpdated();
        if (_parameterMatrix is not null) return _parameterMatrix.diagonal().sum().ToDouble() / _parameterCount;
        return _gram!.diagonal().sum().ToDouble() * _weight / _parameterCount;
    }

    /// <summary>vᵀ(w JᵀJ)v = w ‖J v‖²: one product with J (eq 42) instead of the two of <see cref="Multiply"/>.</summary>
    public Tensor QuadraticForm(Tensor v)
    {
        EnsureUpdated();
        if (_parameterMatrix is not null)
        {
            var x = v.flatten().to_type(ScalarType.Float64);
            return x.dot(_parameterMatrix.mv(x));
        }
        return Jv(v.InDtype(_gram!.dtype)).square().sum(ScalarType.Float64).mul(_weight);
    }

    public Tensor ToDense()
    {
        EnsureUpdated();
        if (_parameterMatrix is not null) return _parameterMatrix.to_type(_statistics!.Dtype);
        var j = _general is not null ? _general.Dense() : (_d!.unsqueeze(2) * _a!.unsqueeze(1)).reshape(_d!.size(0), -1); // tests only: n × p
        if (_form == MetricForm.Centered) j = j - j.mean(new long[] { 0 }, keepdim: true);
        return j.t().mm(j).mul(_weight);
    }

    public void Dispose()
    {
        _batchGrams.Dispose();
        _batchSystem.Dispose();
        _batchRightHandSide.Dispose();
        _a = _d = _dT = _gram = null;
        _gramBatch = null;
        _parameterMatrix = _meanGradient = null;
        _identity?.Dispose();
        _identity = null;
        _general = null;
        _statistics = null;
    }
}
