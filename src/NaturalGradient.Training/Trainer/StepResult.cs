namespace NaturalGradient.Training;

/// <summary>What one optimisation step reports back to the trainer.</summary>
/// <param name="Loss">Mean NLL of the step's batch before the update (must be finite, or the trainer stops).</param>
/// <param name="Damping">Damping λ used in the step (natural-gradient methods), or null.</param>
/// <param name="Rho">Levenberg–Marquardt reduction ratio ρ = actual / predicted loss change, or null.</param>
/// <param name="PredictedKl">Predicted KL ½ΔᵀFΔ of the update (or its quadratic-model change), or null.</param>
/// <param name="SolverIterations">Iterations of an iterative solver (CG/MINRES), or null.</param>
/// <param name="Skipped">True when the update was not applied (e.g. a non-finite direction was rejected).</param>
/// <param name="CurvatureMs">Wall time of the step's curvature work (statistics, update, solve) in milliseconds, or null.</param>
public sealed record StepResult(double Loss, double? Damping = null, double? Rho = null, double? PredictedKl = null,
    int? SolverIterations = null, bool Skipped = false, double? CurvatureMs = null)
{
    /// <summary>Per-layer approximation diagnostics measured at this step (<see cref="OptimizerSettings.DiagnosticsEvery"/>), or null.</summary>
    public IReadOnlyList<NaturalGradient.Diagnostics.LayerApproximation>? Approximation { get; init; }

    /// <summary>Iterations the solver would have needed without its preconditioner, on the steps that measure it, or null.</summary>
    public int? SolverIterationsUnpreconditioned { get; init; }
}
