namespace NaturalGradient.Solvers;

/// <summary>Which Krylov solver a matrix-free method uses.</summary>
public enum SolverKind
{
    /// <summary>Preconditioned conjugate gradient (<see cref="ConjugateGradient"/>): symmetric positive definite systems.</summary>
    Cg,
    /// <summary>Paige–Saunders MINRES (<see cref="Minres"/>): symmetric, possibly indefinite or singular systems.</summary>
    Minres,
    /// <summary>MINRES-QLP (<see cref="MinresQlp"/>): the minimum-length solution of singular or incompatible symmetric systems.</summary>
    MinresQlp,
}

/// <summary>Stopping rules of an iterative solve. Every property has a documented default.</summary>
public sealed record SolverOptions
{
    /// <summary>Largest number of operator applications in the loop; default 100. Must be ≥ 1.</summary>
    public int MaxIterations { get; init; } = 100;

    /// <summary>
    /// Stop when the monitored residual satisfies ‖r‖ ≤ RelativeTolerance · ‖b‖ (the same norm on both sides);
    /// default 1e-6. Must be in (0, 1). Measured against b, not r₀, so a good warm start x₀ shortens the solve.
    /// </summary>
    public double RelativeTolerance { get; init; } = 1e-6;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option; returns this.</summary>
    public SolverOptions Validate()
    {
        if (MaxIterations < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxIterations), MaxIterations, "MaxIterations must be ≥ 1");
        if (!(RelativeTolerance > 0 && RelativeTolerance < 1))
            throw new ArgumentOutOfRangeException(nameof(RelativeTolerance), RelativeTolerance, "RelativeTolerance must be in (0, 1)");
        return this;
    }

    public override string ToString() => $"MaxIterations={MaxIterations}, RelativeTolerance={RelativeTolerance}";
}
