using NaturalGradient.Diagnostics;

namespace NaturalGradient.Preconditioning;

/// <summary>What one <see cref="NaturalGradientPreconditioner.Precondition"/> did.</summary>
/// <param name="Damping">λ used.</param>
/// <param name="Applied">False when the step must be skipped: .grad was left as the plain gradient.</param>
/// <param name="Rejection">Why it was not applied (<see cref="StepRejection.None"/> when applied).</param>
public sealed record PreconditionReport(double Damping, bool Applied, StepRejection Rejection = StepRejection.None)
{
    /// <summary>Wall time of the step's metric statistics and curvature update.</summary>
    public TimeSpan CurvatureUpdateTime { get; init; }

    /// <summary>Wall time of the solve (M + λI)⁻¹ g.</summary>
    public TimeSpan SolveTime { get; init; }

    /// <summary>Iterations of the Hessian-free solver, or null for direct solves.</summary>
    public int? SolverIterations { get; init; }

    /// <summary>Relative residual the Hessian-free solver reached, or null for direct solves.</summary>
    public double? SolverRelativeResidual { get; init; }
}
