using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kbfgs;

/// <summary>
/// A dense inverse approximation H (d × d) with the BFGS inverse update (Nocedal &amp; Wright, eq. 6.17):
/// H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, ρ = 1 / (sᵀy). Starts from H₀ = h₀ I. Memory d²; update O(d²).
/// </summary>
public sealed class DenseBfgsInverse : IInverseFactor
{
    private Tensor _h;

    /// <param name="dimension">d ≥ 1.</param>
    /// <param name="initialScale">h₀ &gt; 0 in H₀ = h₀ I.</param>
    /// <param name="dtype">Element type of H.</param>
    public DenseBfgsInverse(long dimension, double initialScale, ScalarType dtype)
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "dimension must be ≥ 1");
        if (!(initialScale > 0) || double.IsInfinity(initialScale))
            throw new ArgumentOutOfRangeException(nameof(initialScale), initialScale, "initialScale must be a finite number > 0");
        Dimension = dimension;
        _h = (eye(dimension, dtype: dtype) * initialScale).DetachFromDisposeScope();
    }

    /// <summary>An inverse whose H is a copy of <paramref name="h"/> (d × d, symmetric positive definite: a saved state).</summary>
    internal DenseBfgsInverse(Tensor h)
    {
        Dimension = h.size(0);
        _h = h.detach().clone().DetachFromDisposeScope();
    }

    public long Dimension { get; }

    /// <summary>H itself (not a copy): for saving the state.</summary>
    internal Tensor Matrix => _h;

    public Tensor Apply(Tensor m) => _h.mm(m.to_type(_h.dtype)).to_type(m.dtype);

    public void Update(Tensor s, Tensor y)
    {
        using var scope = NewDisposeScope();
        s = s.to_type(_h.dtype).flatten();
        y = y.to_type(_h.dtype).flatten();
        double rho = 1.0 / s.dot(y).ToDouble();
        // H' = H − ρ (s (Hy)ᵀ + (Hy) sᵀ) + (ρ² yᵀHy + ρ) s sᵀ, the expanded form of the product above (H symmetric).
        var hy = _h.mv(y);
        double yhy = y.dot(hy).ToDouble();
        var next = _h - rho * (outer(s, hy) + outer(hy, s)) + (rho * rho * yhy + rho) * outer(s, s);
        next = (next + next.t()) * 0.5;
        _h.Dispose();
        _h = next.DetachFromDisposeScope();
    }

    public Tensor ToDense() => _h.clone();

    public void Dispose() => _h.Dispose();
}
