using NaturalGradient.Solvers;

namespace NaturalGradient.Curvature.HessianFree;

/// <summary>
/// Settings of Hessian-free (truncated-Newton) natural gradient, <see cref="HessianFreeCurvature"/>.
/// Every property has a documented default; <see cref="Validate"/> checks them before any tensor work.
/// </summary>
public sealed record HessianFreeOptions
{
    /// <summary>
    /// Krylov solver for (G + λI) x = g; default <see cref="SolverKind.Cg"/> (seed 001 algorithm 1). Choose
    /// <see cref="SolverKind.Minres"/> for λ = 0 or tiny λ, where G may be singular (seed 001 appendix 8.3).
    /// </summary>
    public SolverKind Solver { get; init; } = SolverKind.Cg;

    /// <summary>Iteration budget per step (one G-vector product each); default 50. Seed 001 uses 20.</summary>
    public int MaxIterations { get; init; } = 50;

    /// <summary>Stop when ‖g − (G + λI) x‖ ≤ RelativeTolerance · ‖g‖; default 1e-4 (seed 001's rtol).</summary>
    public double RelativeTolerance { get; init; } = 1e-4;

    /// <summary>Start each solve from the previous step's solution (Martens 2010 §4.5); default true.</summary>
    public bool WarmStart { get; init; } = true;

    /// <summary>The warm start is WarmStartDecay · x_prev; default 1 (no decay). Martens 2010 uses 0.95. In [0, 1].</summary>
    public double WarmStartDecay { get; init; } = 1.0;

    /// <summary>
    /// Precondition the solver with the inverse of a diagonal Fisher estimate, P = (diag F̂ + λ)^(−ξ); default false.
    /// diag F̂ comes from the step's <see cref="CurvatureBatch.Layers"/> statistics (the Fisher kind the preconditioner
    /// collects: with <c>FisherKind.Exact</c> it is exactly diag G, with the empirical Fisher it is Martens 2010's choice).
    /// </summary>
    public bool DiagonalPreconditioner { get; init; }

    /// <summary>
    /// Precondition the solver with K-FAC's damped inverse of the step's statistics (<see cref="KfacSolverPreconditioner"/>);
    /// default false. Excludes <see cref="DiagonalPreconditioner"/>; needs λ &gt; 0.
    /// </summary>
    public bool KfacPreconditioner { get; init; }

    /// <summary>
    /// Settings of the K-FAC preconditioner's factors (running average, periods); default <see cref="Kfac.KfacOptions"/>
    /// with factors every step (<see cref="Kfac.KfacOptions.FactorUpdatePeriod"/> = 1: every step's statistics count,
    /// since the preconditioner serves that step's Gauss-Newton system).
    /// </summary>
    public Kfac.KfacOptions KfacPreconditionerOptions { get; init; } = new() { FactorUpdatePeriod = 1 };

    /// <summary>
    /// Every this many solves (the 1st, the (1 + N)-th, …) with a preconditioner, also solve the same system from the same
    /// start without it, until the true relative residual ‖g − (G + λI)x‖/‖g‖ the preconditioned solve reached (at most
    /// 10 · <see cref="MaxIterations"/> iterations), and report the count in <see cref="HessianFreeCurvature.LastReference"/>:
    /// the iterations the preconditioner saved. Costs those products on the measured steps only; default 0 (never).
    /// </summary>
    public int ReferenceSolveEvery { get; init; }

    /// <summary>ξ in P = (diag F̂ + λ)^(−ξ); default 1 (Jacobi). Martens 2010 uses 0.75 with the empirical Fisher. In (0, 1].</summary>
    public double DiagonalExponent { get; init; } = 1.0;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option; returns this.</summary>
    public HessianFreeOptions Validate()
    {
        if (!Enum.IsDefined(Solver))
            throw new ArgumentOutOfRangeException(nameof(Solver), Solver, "Solver must be Cg, Minres or MinresQlp");
        if (MaxIterations < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxIterations), MaxIterations, "MaxIterations must be ≥ 1");
        if (!(RelativeTolerance > 0 && RelativeTolerance < 1))
            throw new ArgumentOutOfRangeException(nameof(RelativeTolerance), RelativeTolerance, "RelativeTolerance must be in (0, 1)");
        if (!(WarmStartDecay >= 0 && WarmStartDecay <= 1))
            throw new ArgumentOutOfRangeException(nameof(WarmStartDecay), WarmStartDecay, "WarmStartDecay must be in [0, 1]");
        if (!(DiagonalExponent > 0 && DiagonalExponent <= 1))
            throw new ArgumentOutOfRangeException(nameof(DiagonalExponent), DiagonalExponent, "DiagonalExponent must be in (0, 1]");
        if (KfacPreconditioner && DiagonalPreconditioner)
            throw new ArgumentOutOfRangeException(nameof(KfacPreconditioner), KfacPreconditioner, "choose one solver preconditioner: diagonal or K-FAC");
        if (KfacPreconditioner) KfacPreconditionerOptions.Validate();
        if (ReferenceSolveEvery < 0)
            throw new ArgumentOutOfRangeException(nameof(ReferenceSolveEvery), ReferenceSolveEvery, "ReferenceSolveEvery must be ≥ 0 (0 = never)");
        return this;
    }

    /// <summary>The solver's stopping rules.</summary>
    public SolverOptions ToSolverOptions() => new() { MaxIterations = MaxIterations, RelativeTolerance = RelativeTolerance };

    public override string ToString() =>
        $"DiagonalExponent={DiagonalExponent}, DiagonalPreconditioner={DiagonalPreconditioner}, KfacPreconditioner={KfacPreconditioner}, MaxIterations={MaxIterations}, " +
        $"ReferenceSolveEvery={ReferenceSolveEvery}, RelativeTolerance={RelativeTolerance}, Solver={Solver}, WarmStart={WarmStart}, WarmStartDecay={WarmStartDecay}";
}
