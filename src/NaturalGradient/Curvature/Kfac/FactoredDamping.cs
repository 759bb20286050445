using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// π-adjusted factored Tikhonov damping (Martens &amp; Grosse 2015 §6.3): G ⊗ A + λI is replaced by
/// (G + √λ/π I) ⊗ (A + π√λ I) with π² = (tr A / dim A) / (tr G / dim G), which keeps the two factors' added
/// "spectral mass" in proportion to their average eigenvalues.
/// </summary>
public static class FactoredDamping
{
    /// <summary>
    /// π = √((tr A / dim A) / (tr G / dim G)). Falls back to 1 when either mean eigenvalue is not a finite number
    /// &gt; 0 (e.g. a layer whose output gradients are all zero), so the shifts stay finite.
    /// </summary>
    public static double Pi(double traceA, long dimA, double traceG, long dimG)
    {
        double meanA = traceA / dimA, meanG = traceG / dimG;
        double pi = Math.Sqrt(meanA / meanG);
        return meanA > 0 && meanG > 0 && double.IsFinite(pi) && pi > 0 ? pi : 1.0;
    }

    /// <summary>
    /// π for the factors A and G (any floating dtype): π² = (tr A / dim A) / (tr G / dim G). A may be a diagonal (a
    /// length-in' vector, <see cref="DiagonalActivation"/>), whose trace is the sum of its entries.
    /// </summary>
    public static double Pi(Tensor a, Tensor g)
    {
        using var scope = NewDisposeScope();
        return Pi(DiagonalActivation.Trace(a).ToDouble(), a.size(0), g.trace().ToDouble(), g.size(0));
    }

    /// <summary>The shifts added to A and to G: (π√λ, √λ/π).</summary>
    public static (double ActivationShift, double OutputGradientShift) Shifts(double pi, double damping)
    {
        double root = Math.Sqrt(damping);
        return (pi * root, root / pi);
    }
}
