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
/// The solve itself is <see cref="TengradSolve"/>: eq 40's subtraction is replaced by a push-through split that
/// keeps its accuracy at small λ (float64).
/// Cost O(n² (in' + out) + n³ + n p_l); memory O(n² + n (in' + out)). Linear layers (T = 1) only.
/// </summary>
public sealed class TengradBlock : ICurvatureBlock
{
    private readonly MetricForm _form;
    private Tensor? _a, _d, _gram;
    private double _weight;

    public TengradBlock(MetricForm form = MetricForm.Uncentered) => _form = form;

    /// <summary>P u = u − mean(u) for the centred form; u otherwise.</summary>
    private Tensor Center(Tensor u) => _form == MetricForm.Centered ? u - u.mean() : u;

    public void Update(LayerStatistics statistics, long step)
    {
        if (statistics.Positions != 1)
            throw new NotSupportedException(
                $"TENGraD supports layers with one position per example (Linear); layer '{statistics.Adapter.Name}' ({statistics.Adapter.KindName}) has {statistics.Positions}");
        _a = statistics.PairedActivations().squeeze(1);   // n × in'
        _d = statistics.FlatOutputGradients().squeeze(1); // n × out
        var gram = _a.mm(_a.t()) * _d.mm(_d.t());          // eq 41
        if (_form == MetricForm.Centered)
            gram = gram - gram.mean(new long[] { 0 }, keepdim: true) - gram.mean(new long[] { 1 }, keepdim: true) + gram.mean();
        _gram = gram;
        _weight = statistics.Weight;
    }

    private void EnsureUpdated()
    {
        if (_gram is null) throw new InvalidOperationException("the block has no statistics yet: call Update first");
    }

    /// <summary>J g for a W̄-shaped g (eq 42): n.</summary>
    private Tensor Jv(Tensor g) => Center((_d!.mm(g) * _a!).sum(1));

    /// <summary>Jᵀ u for u of length n (eq 43): W̄-shaped.</summary>
    private Tensor JTu(Tensor u) => (_d! * Center(u).unsqueeze(1)).t().mm(_a!);

    public Tensor Precondition(Tensor gradient, double damping)
    {
        EnsureUpdated();
        if (!(damping > 0))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, "TENGraD needs damping > 0 (its Woodbury form divides by λ)");
        var g = gradient.to_type(_gram!.dtype);
        return TengradSolve.Solve(_a!, _d!, _gram, _form == MetricForm.Centered, _weight, damping, g).to_type(gradient.dtype);
    }

    public Tensor Multiply(Tensor v)
    {
        EnsureUpdated();
        return JTu(Jv(v.to_type(_gram!.dtype))).mul(_weight).to_type(v.dtype);
    }

    /// <summary>vᵀ(w JᵀJ)v = w ‖J v‖²: one product with J (eq 42) instead of the two of <see cref="Multiply"/>.</summary>
    public Tensor QuadraticForm(Tensor v)
    {
        EnsureUpdated();
        return Jv(v.to_type(_gram!.dtype)).square().sum(ScalarType.Float64).mul(_weight);
    }

    public Tensor ToDense()
    {
        EnsureUpdated();
        var j = (_d!.unsqueeze(2) * _a!.unsqueeze(1)).reshape(_d.shape[0], -1); // tests only: n × p
        if (_form == MetricForm.Centered) j = j - j.mean(new long[] { 0 }, keepdim: true);
        return j.t().mm(j).mul(_weight);
    }

    public void Dispose()
    {
        _a = _d = _gram = null;
    }
}
