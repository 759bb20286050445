using Microsoft.Extensions.Logging;

namespace NaturalGradient.Diagnostics;

/// <summary>
/// The library's log messages (<c>Microsoft.Extensions.Logging</c>, source-generated: nothing is formatted unless
/// the level is enabled). Category: the logger the caller passes, typically <c>ILogger&lt;NaturalGradientDescent&gt;</c>.
/// </summary>
internal static partial class StepLog
{
    /// <summary>Event 1, Debug: one line per step.</summary>
    [LoggerMessage(EventId = 1, EventName = "Step", Level = LogLevel.Debug,
        Message = "step {Step}: loss {Loss:G6}, damping {Damping:G3}, rho {Rho:G4}, predicted KL {PredictedKl:G4}, clip scale {ClipScale:G3}, solver iterations {SolverIterations}, relative residual {SolverResidual:G3}, curvature {CurvatureMs:F3} ms (update {UpdateMs:F3}, solve {SolveMs:F3})")]
    public static partial void Step(ILogger logger, long step, double loss, double damping, double rho, double predictedKl,
        double clipScale, int? solverIterations, double? solverResidual, double curvatureMs, double updateMs, double solveMs);

    /// <summary>Event 2, Warning: a step whose solve was non-finite (weights unchanged).</summary>
    [LoggerMessage(EventId = 2, EventName = "StepSkipped", Level = LogLevel.Warning,
        Message = "step {Step} skipped: the natural-gradient direction was not finite at damping {Damping:G3} ({SkippedSteps} skipped so far)")]
    public static partial void Skipped(ILogger logger, long step, double damping, long skippedSteps);

    /// <summary>Writes <paramref name="report"/> at its level.</summary>
    public static void Write(ILogger logger, StepReport report)
    {
        if (!report.Applied)
            Skipped(logger, report.Step, report.Damping, report.SkippedSteps);
        else if (logger.IsEnabled(LogLevel.Debug))
            Step(logger, report.Step, report.Loss, report.Damping, report.Rho, report.PredictedKl, report.KlClipScale,
                report.SolverIterations, report.SolverRelativeResidual, report.CurvatureTime.TotalMilliseconds,
                report.CurvatureUpdateTime.TotalMilliseconds, report.SolveTime.TotalMilliseconds);
    }
}
