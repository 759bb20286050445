namespace NaturalGradient.Preconditioning;

/// <summary>Why a natural-gradient step was not applied (see <c>docs/RELIABILITY.md</c>, "Library fault kinds").</summary>
public enum StepRejection
{
    /// <summary>The step was applied.</summary>
    None,
    /// <summary>
    /// The metric batch's statistics would overflow the curvature (a non-finite output or activation, or second moments
    /// beyond the dtype's range): the curvature ignored the batch and kept its previous state, and the step was skipped.
    /// </summary>
    StatisticsOverflow,
    /// <summary>The solved direction (or a plain gradient applied with it) held ∞ or NaN: the weights were left unchanged.</summary>
    NonFiniteDirection,
}
