using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// TENGraD's block for a dense layer with few parameters against the gradient samples (a small output head): the same
/// damped metric M_l = w J_lᵀJ_l solved in parameter space, (M_l + λI)⁻¹ g by a p_l × p_l Cholesky, instead of
/// through the n × n Gram (eq 40–43). Both sides of the push-through identity (w JᵀJ + λI)⁻¹ Jᵀ = Jᵀ (w JJᵀ + λI)⁻¹
/// give the same Δ; the block takes this side when its multiply-adds are fewer
/// (<see cref="Auto.StructureCostModel.TengradParameterSpaceFlops"/> against <see cref="Auto.StructureCostModel.TengradGramFlops"/>:
/// a regression head of 21 × 1 parameters at n = 128 costs 0.06 M against 1.1 M). M_l is formed in float64 (J has fewer
/// entries than the Gram whenever this side is taken), so the solve needs no rounding checks beyond the Cholesky's own
/// (<see cref="SafeCholesky"/>). A small rank-one layer on the CPU is formed and solved on the calling thread by
/// <see cref="RankOneParameterSystem"/> (a few operator calls instead of about eighteen); other layers, TONGA's centred
/// form and other devices form J explicitly by tensor operations.
/// </summary>
public sealed partial class TengradBlock
{
    /// <summary>M_l = w J_cᵀJ_c (p_l × p_l, float64; J_c centred for TONGA's form) when the layer is solved in parameter space, else null.</summary>
    private Tensor? _parameterMatrix;

    /// <summary>ḡ = w Jᵀ1 (p_l, float64, never centred) in parameter space: the statistics' mean gradient for the mean-gradient route.</summary>
    private Tensor? _meanGradient;

    /// <summary>W̄'s shape (out × in' for Kronecker layers), for Δ from the mean-gradient route.</summary>
    private long[] _parameterShape = Array.Empty<long>();

    /// <summary>I (p_l × p_l, float64), kept across steps and made again only when p_l or the device change: M_l + λI in one kernel.</summary>
    private Tensor? _identity;

    private static long _parameterSpaceSolves;

    /// <summary>How many solves in this process took the parameter-space form (for tests of the dispatch).</summary>
    internal static long ParameterSpaceSolves => Interlocked.Read(ref _parameterSpaceSolves);

    /// <summary>
    /// True when the block solves the layer of <paramref name="statistics"/> in parameter space: a dense layer (W̄ = out × in',
    /// not an index or elementwise layer) whose parameter side costs fewer multiply-adds than its Gram side.
    /// </summary>
    public static bool SolvesInParameterSpace(LayerStatistics statistics) =>
        statistics.Adapter.IsKronecker && statistics.Tokens is null
        && Auto.StructureCostModel.TengradPrefersParameterSpace(statistics.SampleCount, statistics.Positions, statistics.InputWidth, statistics.OutputWidth);

    /// <summary>Forms J (n × p_l, float64), ḡ = w Jᵀ1 and M_l = w J_cᵀJ_c for <see cref="SolvesInParameterSpace"/>.</summary>
    private void UpdateParameterSpace(LayerStatistics statistics)
    {
        const ScalarType f64 = ScalarType.Float64;
        Tensor j;
        if (statistics.IsRankOne)
        {
            var (rowsD, rowsA) = (statistics.OutputGradientRows().NoGraph(), statistics.PairedActivationRows().NoGraph());   // n × out, n × in'
            if (_form != MetricForm.Centered && RankOneParameterSystem.Applies(rowsD, rowsA))
            {
                _parameterShape = new[] { rowsD.size(1), rowsA.size(1) };
                (_parameterMatrix, _meanGradient) = RankOneParameterSystem.Form(rowsD, rowsA, statistics.Weight);
                return;
            }
            var d = rowsD.to_type(f64);
            var a = rowsA.to_type(f64);
            _parameterShape = new[] { d.size(1), a.size(1) };
            // Rows vec(dᵢ āᵢᵀ), row-major as W̄, by one broadcast product (an einsum would take a batched matmul).
            j = d.size(1) == 1 ? a.mul(d) : d.unsqueeze(2).mul(a.unsqueeze(1)).reshape(d.size(0), -1);
        }
        else
        {
            var perSample = statistics.PerSampleGradients();
            _parameterShape = perSample.shape[1..];
            j = perSample.reshape(statistics.SampleCount, -1).to_type(f64);
        }
        _meanGradient = j.sum(new long[] { 0 }).mul_(statistics.Weight);   // p (sum(0) would bind 0 to a ScalarType)
        if (_form == MetricForm.Centered) j = j - j.mean(new long[] { 0 }, keepdim: true);
        _parameterMatrix = j.t().mm(j).mul_(statistics.Weight);
    }

    /// <summary>(M_l + λI)⁻¹ g in float64 (g W̄-shaped), returned in g's dtype.</summary>
    private Tensor PreconditionInParameterSpace(Tensor gradient, double damping)
    {
        Interlocked.Increment(ref _parameterSpaceSolves);
        return SolveParameterSpace(gradient.reshape(-1, 1).to_type(ScalarType.Float64), damping).reshape(gradient.Sizes()).to_type(gradient.dtype);
    }

    /// <summary>
    /// Δ = (M_l + λI)⁻¹ ḡ for the statistics' own mean gradient ḡ = w Jᵀ1 (the conditions of the push-through route: one
    /// sample per example), in the statistics' dtype, W̄-shaped; with <paramref name="innerProduct"/> also ⟨Δ, ḡ⟩ in float64.
    /// </summary>
    private MeanGradientDirection ParameterSpaceMeanGradient(LayerStatistics statistics, double damping, bool innerProduct)
    {
        Interlocked.Increment(ref _parameterSpaceSolves);
        Interlocked.Increment(ref _meanGradientSolves);
        var delta = SolveParameterSpace(_meanGradient!.unsqueeze(1), damping);   // p × 1
        return new MeanGradientDirection(delta.reshape(_parameterShape).to_type(statistics.Dtype),
            innerProduct ? delta.squeeze(1).dot(_meanGradient) : null);
    }

    /// <summary>
    /// (M_l + λI)⁻¹ B for float64 B (p_l × k): the Cholesky factor of M_l + λI and two triangular solves, on the calling
    /// thread by <see cref="RankOneParameterSystem.Solve"/> for CPU blocks of p_l ≤ <see cref="SmallCholesky.MaxOrder"/>,
    /// else by tensor operations with the factor's info read once. A failed factorisation (M_l + λI singular to float64
    /// precision at a tiny λ) goes to <see cref="SafeCholesky.Solve"/>'s fallbacks (jitter, then an eigendecomposition).
    /// </summary>
    private Tensor SolveParameterSpace(Tensor b, double damping)
    {
        var m = _parameterMatrix!;
        bool small = RankOneParameterSystem.SolveApplies(m);
        if (small && RankOneParameterSystem.Solve(m, damping, b) is { } solved) return solved;
        long p = m.size(0);
        if (_identity is null || _identity.size(0) != p || _identity.device_type != m.device_type || _identity.device_index != m.device_index)
        {
            _identity?.Dispose();
            _identity = eye(p, dtype: ScalarType.Float64, device: m.device).DetachFromDisposeScope();
        }
        var system = m.add(_identity, alpha: damping);
        if (small) return SafeCholesky.Solve(system, b);
        var (factor, info) = linalg.cholesky_ex(system);
        return info.item<int>() == 0 ? CholeskySolve.Apply(factor, b) : SafeCholesky.Solve(system, b);
    }
}
