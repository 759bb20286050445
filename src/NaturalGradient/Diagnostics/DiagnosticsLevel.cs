namespace NaturalGradient.Diagnostics;

/// <summary>How much a step measures for its <see cref="StepReport"/>.</summary>
public enum DiagnosticsLevel
{
    /// <summary>
    /// Only values the step computes anyway: loss, damping, predicted KL, clip scale, solver iterations and residual,
    /// skipped steps, timings; ρ under Levenberg–Marquardt damping. Adds no host synchronisation and no tensor work.
    /// </summary>
    Basic,

    /// <summary>
    /// Also ρ under constant damping (one extra forward pass on the batch) and the gradient and update norms (two
    /// host synchronisations per step).
    /// </summary>
    Detailed,
}
