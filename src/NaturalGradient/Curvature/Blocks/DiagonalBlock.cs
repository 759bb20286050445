using NaturalGradient.Numerics;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// The diagonal of a layer's metric, diag(M_l) = w Σ gᵢ ∘ gᵢ, and the solve g / (diag + λ).
/// For rank-one layers (Linear, T = 1) it is w (δ∘δ)ᵀ(ā∘ā) without forming per-sample gradients; for index layers
/// (Embedding) it comes from the token indices (<see cref="TokenGradients.SquaredSum"/>, memory O(n T out + p_l)).
/// Other layers form the per-sample gradients: cost O(n p_l); memory O(n p_l). For rank-one layers the product is
/// formed when first needed after an update, into out × in' buffers kept across steps: the mean-gradient solve writes
/// diag + λ directly (λ, then the product added by the GEMM), and the undamped diagonal is formed only if something
/// reads it (<see cref="Multiply"/>, <see cref="ToDense"/>, <see cref="MeanCurvature"/>, <see cref="Precondition"/>).
/// </summary>
public sealed class DiagonalBlock : ICurvatureBlock
{
    private Tensor? _diagonal; // out × in'
    private LayerStatistics? _rankOne; // a rank-one layer's statistics whose diagonal is not formed yet
    private readonly KeptBuffer _rankOneDiagonal = new(), _damped = new();

    public void Update(LayerStatistics statistics, long step)
    {
        _diagonal = null;
        _rankOne = null;
        if (statistics.IsRankOne)
        {
            _rankOne = statistics;
        }
        else if (statistics.PairedTokens() is { } tokens)
        {
            _diagonal = TokenGradients.SquaredSum(tokens, statistics.FlatOutputGradients(), statistics.Adapter.InputDim).mul_(statistics.Weight);
        }
        else
        {
            _diagonal = statistics.PerSampleGradients().square().sum(dim: 0).mul(statistics.Weight);
        }
    }

    /// <summary>
    /// <paramref name="target"/> ← β · target + w (D∘D)ᵀ(Ā∘Ā) for a rank-one layer's rows: w folded into the m × out
    /// squares, the smaller operand (no pass over the out × in' product); β = 0 ignores the target's old contents.
    /// </summary>
    private static Tensor AddRankOneDiagonal(Tensor target, LayerStatistics statistics, float beta)
    {
        var a = statistics.PairedActivationRows();   // n × in'
        var d = statistics.OutputGradientRows();     // n × out
        return target.addmm_(d.square().mul_(statistics.Weight).t(), a.square(), beta: beta);
    }

    private static Tensor RankOneBuffer(KeptBuffer buffer, LayerStatistics statistics)
    {
        var like = statistics.OutputGradientRows();
        return buffer.Get(stackalloc long[] { statistics.OutputWidth, statistics.InputWidth }, like.dtype, like.device);
    }

    private const string NoStatistics = "the block has no statistics yet: call Update first";

    private Tensor Diagonal
    {
        get
        {
            if (_diagonal is null && _rankOne is { } statistics)
                _diagonal = AddRankOneDiagonal(RankOneBuffer(_rankOneDiagonal, statistics), statistics, beta: 0);
            return _diagonal ?? throw new InvalidOperationException(NoStatistics);
        }
    }

    public Tensor Precondition(Tensor gradient, double damping) => gradient / (Diagonal.InDtype(gradient.dtype) + damping);

    /// <summary>
    /// Δ = ḡ ⊘ (diag + λ) with the mean gradient ḡ = w DᵀĀ formed here as (w D)ᵀĀ (the scale on the m × out rows, not
    /// on the out × in' product) and divided in place: one GEMM, one m × out scaling, the damped diagonal and one
    /// division, for layers with one position per example and one sample per example; null otherwise (the caller
    /// forms ḡ and calls <see cref="Precondition"/>). The damped diagonal is formed in a buffer kept across steps: from
    /// the rows (λ, then the GEMM adds the product) unless the undamped diagonal was already formed (then copied, λ added).
    /// </summary>
    public Tensor? PreconditionMeanGradient(LayerStatistics statistics, double damping) =>
        PreconditionMeanGradient(statistics, damping, innerProduct: false)?.Direction;

    /// <summary>
    /// As <see cref="PreconditionMeanGradient(LayerStatistics, double)"/>; with <paramref name="innerProduct"/>, also
    /// ⟨Δ, ḡ⟩ = Σ Δ ∘ Δ ∘ (diag + λ) in float64 (ḡ = Δ ∘ (diag + λ)), without forming ḡ again.
    /// </summary>
    public MeanGradientDirection? PreconditionMeanGradient(LayerStatistics statistics, double damping, bool innerProduct)
    {
        if (_rankOne is null && _diagonal is null) throw new InvalidOperationException(NoStatistics);
        if (_rankOne is null || Kfac.KroneckerFactors.MeanGradientRows(statistics, _rankOne.Dtype) is not var (d, a))
            return null;   // m × out, m × in'
        var buffer = RankOneBuffer(_damped, _rankOne);
        var damped = _diagonal is { } diagonal ? buffer.copy_(diagonal).add_(damping) : AddRankOneDiagonal(buffer.fill_(damping), _rankOne, beta: 1);
        var direction = d.mul(statistics.Weight).t().mm(a).div_(damped);
        var inner = innerProduct ? direction.square().mul_(damped).sum(ScalarType.Float64) : null;
        Interlocked.Increment(ref _meanGradientSolves);
        return new MeanGradientDirection(direction, inner);
    }

    private static long _meanGradientSolves;

    /// <summary>The kept diagonal and damped-diagonal buffers of a rank-one layer, or null (for tests of their reuse).</summary>
    internal Tensor? DiagonalBuffer => _rankOneDiagonal.Current;

    /// <inheritdoc cref="DiagonalBuffer"/>
    internal Tensor? DampedBuffer => _damped.Current;

    /// <summary>How many diagonal solves in this process took the mean-gradient route (for tests of the dispatch).</summary>
    internal static long MeanGradientSolves => Interlocked.Read(ref _meanGradientSolves);

    public Tensor Multiply(Tensor v) => v * Diagonal.InDtype(v.dtype);

    public Tensor ToDense() => diag(Diagonal.flatten());

    public double MeanCurvature() => Diagonal.mean().ToDouble();

    public void Dispose()
    {
        _diagonal = null;
        _rankOne = null;
        _rankOneDiagonal.Dispose();
        _damped.Dispose();
    }
}
