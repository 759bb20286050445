using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;

namespace NaturalGradient.Diagnostics;

/// <summary>Reads the last iterative solve of a curvature (host values the solver already has), for reports.</summary>
internal static class SolverInfo
{
    /// <summary>Fills the solver fields of <paramref name="report"/> from <paramref name="curvature"/>, if it solves iteratively.</summary>
    public static StepReport With(StepReport report, ICurvature curvature) =>
        curvature is HessianFreeCurvature { LastReport: { } last }
            ? report with
            {
                SolverIterations = last.Iterations, SolverRelativeResidual = last.RelativeResidual, SolverStatus = last.Status,
                SolverIterationsUnpreconditioned = ((HessianFreeCurvature)curvature).LastReference?.Iterations,
            }
            : report;
}
