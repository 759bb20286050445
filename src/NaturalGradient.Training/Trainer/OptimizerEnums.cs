namespace NaturalGradient.Training;

/// <summary>Which examples the curvature (metric) statistics are computed on.</summary>
public enum MetricSource
{
    /// <summary>The same mini-batch as the gradient.</summary>
    SameBatch,
    /// <summary>An independent mini-batch of the training set (same size), drawn each step.</summary>
    OtherBatch,
    /// <summary>
    /// <see cref="OptimizerSettings.UnlabeledCount"/> training inputs drawn each step with their labels discarded:
    /// only for the Monte-Carlo or exact Fisher, which need no labels.
    /// </summary>
    Unlabeled,
}

/// <summary>Iterative solver of the Hessian-free method.</summary>
public enum HfSolver
{
    /// <summary>Conjugate gradient (symmetric positive definite systems: GGN / Fisher).</summary>
    Cg,
    /// <summary>MINRES (symmetric, possibly indefinite systems such as the Hessian).</summary>
    Minres,
    /// <summary>MINRES-QLP (the minimum-length solution of singular or incompatible systems).</summary>
    MinresQlp,
}
