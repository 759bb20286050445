using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// The inverses of the π-damped factors, (A + π√λ I)⁻¹ and (G + √λ/π I)⁻¹, from Cholesky factorisations
/// (<see cref="SafeCholesky"/>, with its float64/jitter fallbacks), remembered with the λ they were built for.
/// Applying them is two matrix products: (G + √λ/π I)⁻¹ V (A + π√λ I)⁻¹ (Martens &amp; Grosse 2015 §6.3).
/// Owns its tensors.
/// </summary>
internal sealed partial class FactoredCholeskyInverse : IDisposable
{
    private Tensor? _aInverse, _gInverse;

    public bool HasValue => _aInverse is not null;

    /// <summary>The damping λ the current inverses were built for (NaN before the first build).</summary>
    public double Damping { get; private set; } = double.NaN;

    /// <summary>Rebuilds both inverses for the factors A, G and damping λ.</summary>
    public void Refresh(Tensor a, Tensor g, double damping)
    {
        using var scope = NewDisposeScope();
        double pi = FactoredDamping.Pi(a, g);
        var (shiftA, shiftG) = FactoredDamping.Shifts(pi, damping);
        var aInverse = DampedInverse(a, shiftA);
        var gInverse = DampedInverse(g, shiftG);
        Dispose();
        _aInverse = aInverse.DetachFromDisposeScope();
        _gInverse = gInverse.DetachFromDisposeScope();
        Damping = damping;
    }

    /// <summary>(G + √λ/π I)⁻¹ V (A + π√λ I)⁻¹ for a W̄-shaped V.</summary>
    public Tensor Apply(Tensor v)
    {
        if (_aInverse is null || _gInverse is null) throw new InvalidOperationException("the inverses have not been computed yet");
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(_gInverse.mm(v).mm(_aInverse));
    }

    private static Tensor DampedInverse(Tensor factor, double shift)
    {
        var damped = factor + shift * eye(factor.shape[0], dtype: factor.dtype, device: factor.device);
        var l = SafeCholesky.Factor(damped);
        return cholesky_inverse(l).to_type(factor.dtype);
    }

    public void Dispose()
    {
        _aInverse?.Dispose(); _gInverse?.Dispose();
        _aInverse = _gInverse = null;
        Damping = double.NaN;
    }
}
