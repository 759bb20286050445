using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kbfgs;

/// <summary>
/// Double damping of a secant pair (s, y) for an inverse-Hessian approximation H (Goldfarb, Ren &amp; Bahamou 2020,
/// algorithm "DD"): Powell's damping with H, then Levenberg–Marquardt damping with μ₂.
/// <code>
///   θ₁ = (1 − μ₁) yᵀHy / (yᵀHy − sᵀy) if sᵀy &lt; μ₁ yᵀHy, else 1;   s̃ = θ₁ s + (1 − θ₁) H y
///   θ₂ = (1 − μ₂) s̃ᵀs̃ / (s̃ᵀs̃ − s̃ᵀy) if s̃ᵀy &lt; μ₂ s̃ᵀs̃, else 1;   ỹ = θ₂ y + (1 − θ₂) s̃
/// </code>
/// Afterwards s̃ᵀỹ ≥ μ₂ s̃ᵀs̃ &gt; 0 (for s̃ ≠ 0), so the BFGS update with (s̃, ỹ) keeps H positive definite, and the
/// eigenvalues of H⁻¹ stay above roughly μ₂ (the LM half plays the role of the damping λ).
/// </summary>
public static class DoubleDamping
{
    /// <summary>The damped pair (s̃, ỹ) from s, y and Hy (flat vectors of equal length).</summary>
    /// <param name="s">Change of the layer's mean pre-activation.</param>
    /// <param name="y">Change of the mean gradient with respect to the pre-activation.</param>
    /// <param name="hy">H y with the current inverse approximation H.</param>
    /// <param name="powellThreshold">μ₁ in (0, 1).</param>
    /// <param name="levenbergMarquardt">μ₂ in (0, 1).</param>
    public static (Tensor S, Tensor Y) Apply(Tensor s, Tensor y, Tensor hy, double powellThreshold, double levenbergMarquardt)
    {
        double sy = s.dot(y).ToDouble(), yhy = y.dot(hy).ToDouble();
        var sTilde = s;
        if (sy < powellThreshold * yhy)
        {
            double theta = (1 - powellThreshold) * yhy / (yhy - sy);
            sTilde = theta * s + (1 - theta) * hy;
        }
        double ss = sTilde.dot(sTilde).ToDouble(), sTy = sTilde.dot(y).ToDouble();
        var yTilde = y;
        if (sTy < levenbergMarquardt * ss)
        {
            double theta = (1 - levenbergMarquardt) * ss / (ss - sTy);
            yTilde = theta * y + (1 - theta) * sTilde;
        }
        return (sTilde, yTilde);
    }
}
