using static TorchSharp.torch;

namespace NaturalGradient.Solvers;

/// <summary>Why an iterative solve stopped.</summary>
public enum SolveStatus
{
    /// <summary>The monitored residual met the tolerance (see <see cref="SolveReport.RelativeResidual"/>).</summary>
    Converged,
    /// <summary>The iteration budget ran out first; X is the last iterate.</summary>
    MaxIterations,
    /// <summary>
    /// The recurrence could not continue: negative or zero curvature pᵀAp ≤ 0 in CG, an indefinite
    /// preconditioner, or an exhausted/ill-conditioned Lanczos process in MINRES. X is the last iterate.
    /// </summary>
    Breakdown,
    /// <summary>A NaN or infinity appeared (in b, A v, or a scalar of the recurrence); X is the last finite iterate.</summary>
    NonFinite,
}

/// <summary>The outcome of <see cref="IIterativeSolver.Solve"/>: the solution and how it was reached.</summary>
/// <param name="X">
/// The approximate solution (flat, shape and dtype of b). Always finite: after a failure it is the last finite
/// iterate (x₀, or zeros, if none). Belongs to the caller's dispose scope.
/// </param>
/// <param name="Iterations">Operator applications inside the loop (the initial residual b − A x₀ is not counted).</param>
/// <param name="ResidualNorm">
/// The residual norm the solver monitors for X: ‖b − A X‖₂ from the recurrence for CG and unpreconditioned
/// MINRES (and MINRES-QLP); the preconditioner norm ‖b − A X‖_P = √(rᵀ P r) for preconditioned MINRES. NaN when the
/// recurrence does not carry the residual of the X returned (a <see cref="SolveStatus.NonFinite"/> stop where the
/// next iterate overflowed in CG or MINRES-QLP, or a non-finite b).
/// </param>
/// <param name="RelativeResidual">ResidualNorm divided by the same norm of b (0 when b = 0).</param>
/// <param name="Status">Why the solve stopped.</param>
public sealed record SolveReport(Tensor X, int Iterations, double ResidualNorm, double RelativeResidual, SolveStatus Status)
{
    /// <summary>True when <see cref="Status"/> is <see cref="SolveStatus.Converged"/>.</summary>
    public bool Converged => Status == SolveStatus.Converged;

    /// <summary>One line for logs and metrics.</summary>
    public override string ToString() =>
        $"{Status} after {Iterations} iterations, residual {ResidualNorm:E3} (relative {RelativeResidual:E3})";
}
