using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kbfgs;

/// <summary>A quasi-Newton approximation H ≈ G⁻¹ of a d × d factor, updated from secant pairs H y = s.</summary>
public interface IInverseFactor : IDisposable
{
    /// <summary>d.</summary>
    long Dimension { get; }

    /// <summary>H M for a d × k matrix M (a fresh tensor).</summary>
    Tensor Apply(Tensor m);

    /// <summary>The BFGS update with a pair satisfying sᵀy &gt; 0: afterwards H y = s (the secant condition).</summary>
    void Update(Tensor s, Tensor y);

    /// <summary>The dense d × d matrix H (tests, diagnostics and Multiply).</summary>
    Tensor ToDense();
}
