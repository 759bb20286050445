using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kbfgs;

/// <summary>
/// K-BFGS block of a layer (Goldfarb, Ren &amp; Bahamou 2020): the metric block is G ⊗ A (row-major vec of W̄, as
/// K-FAC), but G⁻¹ is never computed from G: a quasi-Newton matrix H_g ≈ G⁻¹ (out × out) is updated by damped BFGS or
/// L-BFGS from secant pairs of the layer's pre-activations h = W̄ ā and their gradients δ = ∂ℓ/∂h, and A's inverse is
/// the usual damped inverse H_a = (A + √λ I)⁻¹ of the running average A = (1/m) Σ ā āᵀ. The step is Δ = H_g ∇W̄ H_a.
/// </summary>
/// <remarks>
/// <para>Secant pair: <see cref="Update"/> (before the step) records the batch's mean activation ā̄, mean output
/// gradient δ̄ and the weights W̄; <see cref="UpdateSecant"/> (after the step, on the same batch) gives
/// s = W̄' ā̄' − W̄ ā̄ (change of the mean pre-activation) and y = δ̄' − δ̄ (change of its mean gradient), so y ≈ G s.
/// The pair is double-damped (<see cref="DoubleDamping"/>, μ₁ = <see cref="KbfgsOptions.PowellThreshold"/>,
/// μ₂ = min(√λ, 0.9)) and H_g receives the BFGS update, after which H_g ỹ = s̃ and H_g stays positive definite.
/// The statistics must carry the loss gradient (empirical Fisher, data labels) for y to be a gradient change.</para>
/// <para>Start: H_g⁰ = I / (tr G₀ / out + √λ) from the first batch's G₀ = (w/T) Σ δδᵀ (only its trace is formed)
/// and the λ of the first <see cref="Precondition"/>. Memory: A and H_a (2 in'²) plus out² (BFGS) or 2 · L · out
/// (L-BFGS); per step O(m in'² + in'³ + out² in' + out in'²).</para>
/// </remarks>
public sealed partial class KbfgsBlock : ICurvatureBlock
{
    private readonly RunningAverage _a = new();
    private IInverseFactor? _h;
    private Tensor? _meanActivation, _meanGradient, _weights, _aInverse;
    private double _meanEigenvalueG = double.NaN, _aInverseDamping = double.NaN, _lastDamping = double.NaN;
    private bool _aChanged = true, _disposed;

    public KbfgsBlock(ILayerAdapter layer, KbfgsOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        Layer = layer;
        Options = (options ?? new KbfgsOptions()).Validate();
    }

    public ILayerAdapter Layer { get; }
    public KbfgsOptions Options { get; }

    /// <summary>Secant pairs applied so far (pairs with s̃ᵀỹ ≤ 0 or non-finite values are skipped and not counted).</summary>
    public int SecantUpdates { get; private set; }

    /// <summary>The quasi-Newton inverse H_g ≈ G⁻¹ (null before the first <see cref="Precondition"/>).</summary>
    public IInverseFactor? InverseOutputGradientFactor => _h;

    /// <summary>The current A (in' × in'), a fresh alias.</summary>
    public Tensor ActivationFactor => (_a.Value ?? throw NotUpdated()).alias();

    /// <summary>Absorbs A and records the "before" half of the step's secant pair.</summary>
    public void Update(LayerStatistics statistics, long step)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        KroneckerBlockGuard.Statistics(Layer, statistics, step);
        using var scope = NewDisposeScope();
        _a.Update(KroneckerFactors.Activation(statistics), _a.HasValue ? Options.ActivationDecay : 0);
        _aChanged = true;
        if (double.IsNaN(_meanEigenvalueG))
        {
            var d = statistics.OutputGradients.detach();
            _meanEigenvalueG = d.square().sum().ToDouble() * statistics.Weight / statistics.Positions / Layer.OutputDim;
        }
        Replace(ref _meanActivation, MeanActivation(statistics));
        Replace(ref _meanGradient, MeanGradient(statistics));
        Replace(ref _weights, Layer.WeightMatrix().to_type(statistics.Dtype).clone());
    }

    /// <summary>
    /// The "after" half: statistics of the same batch after the weights moved. Applies one double-damped BFGS update to
    /// H_g. Returns false (and leaves H_g) when there is no "before" record, no H_g yet, or the pair is unusable.
    /// </summary>
    public bool UpdateSecant(LayerStatistics after)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        KroneckerBlockGuard.Statistics(Layer, after, 0);
        if (_h is null || _meanActivation is null || _meanGradient is null || _weights is null) return false;
        using var scope = NewDisposeScope();
        var dtype = _meanActivation.dtype;
        var hBefore = _weights.mv(_meanActivation);
        var hAfter = Layer.WeightMatrix().to_type(dtype).mv(MeanActivation(after));
        var s = hAfter - hBefore;
        var y = MeanGradient(after) - _meanGradient;
        var hy = _h.Apply(y.unsqueeze(1)).squeeze(1);
        double mu2 = Math.Min(Math.Sqrt(_lastDamping), 0.9);
        var (sTilde, yTilde) = DoubleDamping.Apply(s, y, hy, Options.PowellThreshold, mu2);
        double curvature = sTilde.dot(yTilde).ToDouble();
        if (!(curvature > 0) || double.IsInfinity(curvature)) return false;
        _h.Update(sTilde, yTilde);
        SecantUpdates++;
        return true;
    }

    /// <summary>Δ = H_g g (A + √λ I)⁻¹ for the W̄-shaped gradient g. Returns a fresh tensor.</summary>
    public Tensor Precondition(Tensor gradient, double damping)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        KroneckerBlockGuard.Matrix(Layer, gradient, nameof(gradient));
        KroneckerBlockGuard.Damping(damping);
        var a = _a.Value ?? throw NotUpdated();
        _lastDamping = damping;
        double root = Math.Sqrt(damping);
        if (_h is null)
        {
            double scale = 1.0 / ((double.IsFinite(_meanEigenvalueG) ? Math.Max(_meanEigenvalueG, 0) : 0) + root);
            _h = Options.Memory == 0
                ? new DenseBfgsInverse(Layer.OutputDim, scale, a.dtype)
                : new LimitedMemoryBfgsInverse(Layer.OutputDim, Options.Memory, scale, a.dtype);
        }
        if (_aChanged || _aInverseDamping != damping)
        {
            using var inner = NewDisposeScope();
            var damped = a + root * eye(a.size(0), dtype: a.dtype, device: a.device);
            var inverse = cholesky_inverse(SafeCholesky.Factor(damped)).to_type(a.dtype);
            Replace(ref _aInverse, inverse);
            _aInverseDamping = damping;
            _aChanged = false;
        }
        using var scope = NewDisposeScope();
        var g = gradient.detach().to_type(a.dtype);
        return scope.MoveToOuter(_h.Apply(g).mm(_aInverse!).to_type(gradient.dtype));
    }

    /// <summary>(H_g⁻¹ ⊗ A) vec(v) = vec(H_g⁻¹ v A): the block K-BFGS models, without damping.</summary>
    public Tensor Multiply(Tensor v)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        KroneckerBlockGuard.Matrix(Layer, v, nameof(v));
        var a = _a.Value ?? throw NotUpdated();
        using var scope = NewDisposeScope();
        var vv = v.detach().to_type(a.dtype);
        var left = _h is null ? vv.mul(_meanEigenvalueG) : linalg.solve(_h.ToDense(), vv);
        return scope.MoveToOuter(left.mm(a).to_type(v.dtype));
    }

    /// <summary>The dense block H_g⁻¹ ⊗ A (p × p). Tests and small layers only.</summary>
    public Tensor ToDense()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var a = _a.Value ?? throw NotUpdated();
        using var scope = NewDisposeScope();
        var g = _h is null ? eye(Layer.OutputDim, dtype: a.dtype) * _meanEigenvalueG : linalg.inv(_h.ToDense());
        return scope.MoveToOuter(kron(g, a));
    }

    private static Tensor MeanActivation(LayerStatistics statistics)
    {
        var a = statistics.Activations.detach();
        return a.reshape(-1, a.size(2)).mean(new long[] { 0 });
    }

    /// <summary>Mean over examples and positions of the loss gradient δ with respect to the pre-activation (first gradient sample).</summary>
    private static Tensor MeanGradient(LayerStatistics statistics)
    {
        var d = statistics.OutputGradients.detach()[0];
        return d.reshape(-1, d.size(2)).mean(new long[] { 0 });
    }

    private static void Replace(ref Tensor? slot, Tensor value)
    {
        value.DetachFromDisposeScope();
        slot?.Dispose();
        slot = value;
    }

    private InvalidOperationException NotUpdated() =>
        new($"K-BFGS block of layer '{Layer.Name}' has no statistics yet: call Update first");

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _a.Dispose();
        _h?.Dispose();
        _meanActivation?.Dispose(); _meanGradient?.Dispose(); _weights?.Dispose(); _aInverse?.Dispose();
    }
}
