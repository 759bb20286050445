using System.Globalization;

namespace NaturalGradient.Curvature.Ksd;

/// <summary>Settings of <see cref="KrylovSubspaceDescent"/> (Vinyals &amp; Povey 2012). Every property has a documented default.</summary>
public sealed record KsdOptions
{
    /// <summary>k ≥ 1: Krylov vectors g, Gg, …, G^(k−1) g of the basis (before the previous step is added); default 8.</summary>
    public int Dimension { get; init; } = 8;

    /// <summary>Damping λ ≥ 0 of the Krylov operator G + λI and of the subspace BFGS start (VᵀGV + λI)⁻¹; default 1e-3.</summary>
    public double Damping { get; init; } = 1e-3;

    /// <summary>BFGS iterations of the subspace minimisation per step, ≥ 1; default 10 (each costs one or more forward-backward passes).</summary>
    public int SubspaceIterations { get; init; } = 10;

    /// <summary>Stop the subspace BFGS when ‖∇φ(α)‖ ≤ SubspaceTolerance · ‖∇φ(0)‖; in (0, 1); default 1e-6.</summary>
    public double SubspaceTolerance { get; init; } = 1e-6;

    /// <summary>
    /// ρ ≥ 0 of the proximal term (ρ/2)‖Vᵀα‖² added to the subspace objective, a Levenberg–Marquardt-style limit on the
    /// step when the subspace batch alone would send it far (e.g. logits of separable data); default 0 (none).
    /// </summary>
    public double StepPenalty { get; init; }

    /// <summary>Add the previous step's direction to the basis (Vinyals &amp; Povey 2012 §3); default true.</summary>
    public bool IncludePreviousStep { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid value; returns this.</summary>
    public KsdOptions Validate()
    {
        if (Dimension < 1) throw new ArgumentOutOfRangeException(nameof(Dimension), Dimension, $"Dimension must be ≥ 1, got {Dimension}");
        if (!(Damping >= 0) || double.IsInfinity(Damping))
            throw new ArgumentOutOfRangeException(nameof(Damping), Damping, $"Damping must be a finite number ≥ 0, got {Damping}");
        if (!(StepPenalty >= 0) || double.IsInfinity(StepPenalty))
            throw new ArgumentOutOfRangeException(nameof(StepPenalty), StepPenalty, $"StepPenalty must be a finite number ≥ 0, got {StepPenalty}");
        if (SubspaceIterations < 1)
            throw new ArgumentOutOfRangeException(nameof(SubspaceIterations), SubspaceIterations, $"SubspaceIterations must be ≥ 1, got {SubspaceIterations}");
        if (!(SubspaceTolerance > 0 && SubspaceTolerance < 1))
            throw new ArgumentOutOfRangeException(nameof(SubspaceTolerance), SubspaceTolerance, $"SubspaceTolerance must be in (0, 1), got {SubspaceTolerance}");
        return this;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"KsdOptions {{ Damping = {Damping}, Dimension = {Dimension}, IncludePreviousStep = {IncludePreviousStep}, StepPenalty = {StepPenalty}, SubspaceIterations = {SubspaceIterations}, SubspaceTolerance = {SubspaceTolerance} }}");
}
