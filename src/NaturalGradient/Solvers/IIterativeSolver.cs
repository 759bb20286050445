using static TorchSharp.torch;

namespace NaturalGradient.Solvers;

/// <summary>
/// A Krylov solver for A x = b with a symmetric operator A given only as a product v ↦ A v
/// (design-examples §7.2, after MathNet.Numerics' iterative solvers).
/// </summary>
public interface IIterativeSolver
{
    /// <summary>Approximately solves A x = b.</summary>
    /// <param name="apply">v ↦ A v for flat v (shape of b); must return a tensor of the same shape and not modify v.</param>
    /// <param name="b">Right-hand side, a flat 1-D floating-point tensor.</param>
    /// <param name="x0">Starting point (shape of b), or null for zeros. Not modified.</param>
    /// <param name="options">Stopping rules (validated).</param>
    /// <param name="preconditioner">
    /// Optional r ↦ P r with P a symmetric positive definite approximation of A⁻¹ (e.g. the inverse diagonal);
    /// null for none. Must return a tensor of the shape of r and not modify r.
    /// </param>
    /// <returns>The report; numerical failure is a <see cref="SolveStatus"/>, never an exception.</returns>
    /// <exception cref="ArgumentException">b is not 1-D floating point, x0 does not match b, or apply/preconditioner return the wrong shape.</exception>
    SolveReport Solve(Func<Tensor, Tensor> apply, Tensor b, Tensor? x0, SolverOptions options, Func<Tensor, Tensor>? preconditioner = null);
}

/// <summary>Creates solvers by kind.</summary>
public static class IterativeSolver
{
    public static IIterativeSolver Create(SolverKind kind) => kind switch
    {
        SolverKind.Cg => new ConjugateGradient(),
        SolverKind.Minres => new Minres(),
        SolverKind.MinresQlp => new MinresQlp(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown solver kind"),
    };
}
