using System.Globalization;

namespace NaturalGradient.Curvature.Kbfgs;

/// <summary>
/// Hyperparameters of K-BFGS / K-BFGS(L) (Goldfarb, Ren &amp; Bahamou 2020, "Practical quasi-Newton methods for
/// training deep neural networks"). Defaults: dense BFGS for G⁻¹, Powell threshold μ₁ = 0.2, β = 0.95 for A.
/// </summary>
public sealed record KbfgsOptions
{
    /// <summary>
    /// L-BFGS memory for the G factor's inverse: the last <c>Memory</c> damped pairs are kept and applied by the
    /// two-loop recursion (K-BFGS(L), O(Memory · out) memory). 0 (default) keeps a dense out × out inverse updated by
    /// BFGS (K-BFGS). With Memory ≥ the number of updates both give the same matrix.
    /// </summary>
    public int Memory { get; init; }

    /// <summary>μ₁ of Powell's damping (the first half of double damping): s is blended towards H y until sᵀy ≥ μ₁ yᵀHy. In (0, 1); default 0.2.</summary>
    public double PowellThreshold { get; init; } = 0.2;

    /// <summary>β of the running average A ← β A + (1 − β) A_batch of the activation factor. In [0, 1); default 0.95.</summary>
    public double ActivationDecay { get; init; } = 0.95;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid value; returns this.</summary>
    public KbfgsOptions Validate()
    {
        if (Memory < 0) throw new ArgumentOutOfRangeException(nameof(Memory), Memory, $"Memory must be ≥ 0 (0 = dense BFGS), got {Memory}");
        if (!(PowellThreshold > 0 && PowellThreshold < 1))
            throw new ArgumentOutOfRangeException(nameof(PowellThreshold), PowellThreshold, $"PowellThreshold must be in (0, 1), got {PowellThreshold}");
        if (!(ActivationDecay >= 0 && ActivationDecay < 1))
            throw new ArgumentOutOfRangeException(nameof(ActivationDecay), ActivationDecay, $"ActivationDecay must be in [0, 1), got {ActivationDecay}");
        return this;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"KbfgsOptions {{ ActivationDecay = {ActivationDecay}, Memory = {Memory}, PowellThreshold = {PowellThreshold} }}");
}
