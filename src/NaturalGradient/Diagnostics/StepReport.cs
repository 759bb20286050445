using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;

namespace NaturalGradient.Diagnostics;

/// <summary>
/// What one <see cref="Optim.NaturalGradientDescent.Step"/> did. Every value is one the step already brought to the
/// host for its own decisions (loss, non-finite check, predicted KL); the values that need an extra host
/// synchronisation or forward pass are filled only under <see cref="DiagnosticsLevel.Detailed"/>.
/// </summary>
/// <param name="Loss">Mean NLL of the batch before the step.</param>
/// <param name="Damping">λ used in (M + λI)Δ = g.</param>
/// <param name="Rho">
/// Reduction ratio ρ = (L(θ + u) − L(θ)) / q(u) on the same batch (Martens 2010 §4.1): computed under
/// Levenberg–Marquardt damping, or for any schedule under <see cref="DiagnosticsLevel.Detailed"/>; NaN otherwise
/// (and when the model predicts no decrease).
/// </param>
/// <param name="PredictedKl">½ uᵀMu of the applied step u, with the undamped metric M (seed 000 eq 29); NaN when skipped.</param>
/// <param name="Applied">False when the step was skipped: weights, momentum and damping were left unchanged.</param>
/// <param name="Rejection">Why it was skipped (<see cref="StepRejection.None"/> when applied).</param>
public sealed record StepReport(double Loss, double Damping, double Rho, double PredictedKl, bool Applied,
    StepRejection Rejection = StepRejection.None)
{
    /// <summary>1-based index of this step among the optimiser's steps (applied or skipped).</summary>
    public long Step { get; init; }

    /// <summary>Steps skipped so far by this optimiser, this one included.</summary>
    public long SkippedSteps { get; init; }

    /// <summary>Factor κ-clipping multiplied the update by, in (0, 1]; 1 when the KL bound was not active.</summary>
    public double KlClipScale { get; init; } = 1;

    /// <summary>Iterations of the iterative solver (Hessian-free CG/MINRES), or null for direct solves.</summary>
    public int? SolverIterations { get; init; }

    /// <summary>Relative residual ‖b − AΔ‖ / ‖b‖ the iterative solver reached, or null for direct solves.</summary>
    public double? SolverRelativeResidual { get; init; }

    /// <summary>
    /// Iterations the unpreconditioned solver needed for the same system to the same relative residual, on the steps that
    /// measure it (<see cref="Curvature.HessianFree.HessianFreeOptions.ReferenceSolveEvery"/>); null otherwise. The
    /// preconditioner saved SolverIterationsUnpreconditioned − SolverIterations.
    /// </summary>
    public int? SolverIterationsUnpreconditioned { get; init; }

    /// <summary>Why the iterative solver stopped, or null for direct solves.</summary>
    public SolveStatus? SolverStatus { get; init; }

    /// <summary>
    /// Wall time of the metric's statistics and the curvature update (Fisher samples, factors, inverses or
    /// eigenbases when due). Measured with a monotonic clock around work that is synchronous on the CPU; on a GPU it
    /// is launch time unless the step synchronised inside it.
    /// </summary>
    public TimeSpan CurvatureUpdateTime { get; init; }

    /// <summary>Wall time of the solve Δ = (M + λI)⁻¹ g and the product M u for the predicted KL.</summary>
    public TimeSpan SolveTime { get; init; }

    /// <summary>Time in curvature work: <see cref="CurvatureUpdateTime"/> + <see cref="SolveTime"/>.</summary>
    public TimeSpan CurvatureTime => CurvatureUpdateTime + SolveTime;

    /// <summary>‖g‖₂ over the covered layers (weight decay included); only under <see cref="DiagnosticsLevel.Detailed"/>.</summary>
    public double? GradientNorm { get; init; }

    /// <summary>‖u‖₂ of the applied update over the covered layers; only under <see cref="DiagnosticsLevel.Detailed"/>.</summary>
    public double? UpdateNorm { get; init; }
}
