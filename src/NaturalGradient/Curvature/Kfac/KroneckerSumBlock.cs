using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// K-FAC block of a tensor tied in transposed layouts (an Embedding table E, V × d, reused as the output Linear's weight:
/// <see cref="TiedLayerAdapter"/> with <see cref="TiedLayerAdapter.KroneckerFactored"/> false). The block is the sum of
/// the two kinds of uses' Kronecker terms, G₁ ⊗ A₁ + G₂ ⊗ A₂ (<see cref="KroneckerSumFactors"/>; cross-use terms dropped),
/// and is solved exactly by simultaneous diagonalisation (<see cref="KroneckerSumInverse"/>; Martens, Ba &amp; Johnson
/// 2018, §3.5).
/// </summary>
/// <remarks>
/// <para>The matrix inverted: (G₁ + √λ/π I) ⊗ (A₁ + π√λ I) + G₂ ⊗ A₂, with π² = (tr A₁ / in') / (tr G₁ / R) — K-FAC's
/// factored damping (<see cref="FactoredDamping"/>) on the direct term only; G₂ = diag(token counts)/m and A₂ are not
/// damped (the direct term is positive definite, so the sum is). <see cref="KfacOptions.DampingMode"/>,
/// <see cref="KfacOptions.InverseMethod"/>, <see cref="KfacOptions.WeightSharing"/> and
/// <see cref="KfacOptions.FactorPrecision"/> and <see cref="KfacOptions.InversePrecision"/> do not apply: the damping is
/// always this factored form, the decomposition always eigh, each use always expand, the factors formed and the solve
/// done in the statistics' dtype.</para>
/// <para>Schedule: the four factors absorb a batch (running average with β) on steps with s mod T_f = 0; on steps with
/// s mod T_inv = 0 G₁ and A₁ are eigendecomposed and G₂, A₂ and π are kept with them. The λ-dependent part (the whitened
/// G₂ and A₂ and their eigendecompositions, R × R and in' × in') is built at the next <see cref="Precondition"/> from what
/// was kept, and again whenever λ differs from the one it was built for. <see cref="Multiply"/> and
/// <see cref="ToDense"/> use the current factors, undamped.</para>
/// <para>Cost: two eigh of R × R and two of in' × in' per refresh or λ change; applying is four products. Memory: G₁, its
/// eigenbasis and P_G (three R × R matrices; R = V is limited by <see cref="KfacOptions.MaxFactorDimension"/>), plus
/// in' × in' matrices and R-vectors.</para>
/// </remarks>
public sealed partial class KroneckerSumBlock : ICurvatureBlock
{
    private readonly RunningAverage _a1 = new(), _g1 = new(), _g2 = new(), _a2 = new();
    private readonly RunningAverage _g2Kept = new(), _a2Kept = new();     // G₂, A₂ as of the last refresh
    private readonly KroneckerEigenbasis _direct = new();                  // eigh of A₁ and G₁ as of the last refresh
    private readonly KroneckerSumInverse _inverse = new();
    private bool _inverseDue = true, _disposed;
    private double _pi = 1.0;

    /// <param name="layer">The tied layer (W̄ of R × in').</param>
    /// <param name="options">Decay and periods; <c>new KfacOptions()</c> if null. Validated here.</param>
    /// <exception cref="ArgumentException">The layer has no transposed use (use <see cref="KfacBlock"/>).</exception>
    public KroneckerSumBlock(TiedLayerAdapter layer, KfacOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        if (layer.KroneckerFactored)
            throw new ArgumentException($"layer '{layer.Name}' has no transposed use: its uses are positions of one Kronecker layer (KfacBlock)", nameof(layer));
        Layer = layer;
        Options = (options ?? new KfacOptions()).WithInversePeriod(KfacOptions.DefaultInverseUpdatePeriod).Validate();
    }

    public TiedLayerAdapter Layer { get; }
    public KfacOptions Options { get; }

    /// <summary>True once the block has absorbed statistics.</summary>
    public bool IsInitialized => _a1.HasValue;

    /// <summary>How many times A₁ and G₁ have been eigendecomposed.</summary>
    public int InverseRefreshCount { get; private set; }

    /// <summary>The current A₁ (in' × in'), as a fresh alias.</summary>
    public Tensor DirectActivation => Current(_a1).alias();

    /// <summary>The current G₁ (R × R), as a fresh alias.</summary>
    public Tensor DirectOutputGradient => Current(_g1).alias();

    /// <summary>The current G₂'s diagonal, token counts / m (length R), as a fresh alias.</summary>
    public Tensor TransposedOutputGradient => Current(_g2).alias();

    /// <summary>The current A₂ (in' × in'), as a fresh alias.</summary>
    public Tensor TransposedActivation => Current(_a2).alias();

    /// <summary>Absorbs one step's statistics into the four factors, and decomposes A₁ and G₁, on their schedules.</summary>
    /// <exception cref="ArgumentException">The statistics do not belong to the layer or do not mark the transposed positions.</exception>
    public void Update(LayerStatistics statistics, long step)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Statistics(Layer, statistics, step);
        bool first = !_a1.HasValue;
        using var scope = NewDisposeScope();
        if (first || Options.FactorsDue(step))
        {
            var (a1, g1, g2, a2) = KroneckerSumFactors.Batch(statistics);
            _a1.Update(a1, Options.FactorDecay);
            _g1.Update(g1, Options.FactorDecay);
            _g2.Update(g2, Options.FactorDecay);
            _a2.Update(a2, Options.FactorDecay);
        }
        if (!first && !Options.InverseDue(step)) return;
        _direct.Refresh(_a1.Value!, _g1.Value!);
        _g2Kept.Replace(_g2.Value!.clone());
        _a2Kept.Replace(_a2.Value!.clone());
        _pi = FactoredDamping.Pi(_a1.Value!, _g1.Value!);
        _inverseDue = true;
        InverseRefreshCount++;
    }

    /// <summary>
    /// Δ = [(G₁ + √λ/π I) ⊗ (A₁ + π√λ I) + G₂ ⊗ A₂]⁻¹ vec(g) for the W̄-shaped g (R × in'), with the factors of the last
    /// refresh. Returns a fresh tensor.
    /// </summary>
    public Tensor Precondition(Tensor gradient, double damping)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Matrix(Layer, gradient, nameof(gradient));
        KroneckerBlockGuard.Damping(damping);
        var a1 = Current(_a1);
        using var scope = NewDisposeScope();
        if (_inverseDue || _inverse.Damping != damping)
        {
            var (shiftA, shiftG) = FactoredDamping.Shifts(_pi, damping);
            _inverse.Build(_direct.OutputGradientEigenvalues, _direct.OutputGradientBasis, shiftG, _g2Kept.Value!,
                           _direct.ActivationEigenvalues, _direct.ActivationBasis, shiftA, _a2Kept.Value!, damping);
            _inverseDue = false;
        }
        return scope.MoveToOuter(_inverse.Apply(gradient.detach().to_type(a1.dtype)).to_type(gradient.dtype));
    }

    /// <summary>(G₁ ⊗ A₁ + G₂ ⊗ A₂) vec(v) = vec(G₁ v A₁ + diag(g₂) v A₂), current factors, no damping.</summary>
    public Tensor Multiply(Tensor v)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Matrix(Layer, v, nameof(v));
        var a1 = Current(_a1);
        using var scope = NewDisposeScope();
        var x = v.detach().to_type(a1.dtype);
        var product = _g1.Value!.mm(x).mm(a1).add_(x.mul(_g2.Value!.unsqueeze(1)).mm(_a2.Value!));
        return scope.MoveToOuter(product.to_type(v.dtype));
    }

    /// <summary>tr(G₁ ⊗ A₁ + G₂ ⊗ A₂) / p = (tr G₁ tr A₁ + Σ g₂ tr A₂) / (R · in').</summary>
    public double MeanCurvature()
    {
        using var scope = NewDisposeScope();
        double direct = Current(_g1).trace().ToDouble() * _a1.Value!.trace().ToDouble();
        double transposed = _g2.Value!.sum().ToDouble() * _a2.Value!.trace().ToDouble();
        return (direct + transposed) / (Layer.OutputDim * (double)Layer.InputDim);
    }

    /// <summary>The dense block G₁ ⊗ A₁ + diag(g₂) ⊗ A₂ (p × p). Tests and small layers only.</summary>
    public Tensor ToDense()
    {
        ThrowIfDisposed();
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(kron(Current(_g1), _a1.Value!) + kron(diag(_g2.Value!), _a2.Value!));
    }

    /// <summary>The dense inverse the last <see cref="Precondition"/> applied (p × p). Tests and small layers only.</summary>
    internal Tensor DenseInverse() => _inverse.Dense();

    private Tensor Current(RunningAverage factor) =>
        factor.Value ?? throw new InvalidOperationException($"K-FAC block of tied layer '{Layer.Name}' has no statistics yet: call Update first");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _a1.Dispose(); _g1.Dispose(); _g2.Dispose(); _a2.Dispose();
        _g2Kept.Dispose(); _a2Kept.Dispose(); _direct.Dispose(); _inverse.Dispose();
    }
}
