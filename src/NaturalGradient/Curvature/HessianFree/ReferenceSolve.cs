using NaturalGradient.Solvers;

namespace NaturalGradient.Curvature.HessianFree;

/// <summary>
/// What a preconditioned Hessian-free solve saved: the unpreconditioned solver on the same system, from the same start,
/// run to the relative residual the preconditioned solve reached (<see cref="HessianFreeOptions.ReferenceSolveEvery"/>).
/// </summary>
/// <param name="Iterations">Iterations the unpreconditioned solver needed (a lower bound when <paramref name="Status"/> is MaxIterations).</param>
/// <param name="TargetRelativeResidual">‖g − (G + λI)x‖/‖g‖ of the preconditioned solution x, the reference's tolerance.</param>
/// <param name="RelativeResidual">The relative residual the reference reached.</param>
/// <param name="Status">Why the reference stopped (Converged: it reached the target).</param>
public sealed record ReferenceSolve(int Iterations, double TargetRelativeResidual, double RelativeResidual, SolveStatus Status);
