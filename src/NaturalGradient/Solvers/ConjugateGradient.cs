using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Solvers;

/// <summary>
/// Preconditioned conjugate gradient for symmetric positive definite A (Hestenes &amp; Stiefel 1952; Saad,
/// Iterative Methods for Sparse Linear Systems, alg. 9.1). The linear solver of truncated-Newton natural
/// gradient (seed 001 algorithm 1: ng ← linear_cg(gfn, g, max_iters, rtol)).
/// </summary>
/// <remarks>
/// Each iteration costs one product A p, one preconditioner application and a few vector operations; in exact
/// arithmetic it converges in at most n iterations (fewer with clustered eigenvalues). It stops when the
/// recursive residual satisfies ‖r‖₂ ≤ tol · ‖b‖₂. Curvature pᵀAp ≤ 0 (A indefinite or singular along p) is a
/// <see cref="SolveStatus.Breakdown"/>: use <see cref="Minres"/> for such systems, or damp A.
/// </remarks>
public sealed class ConjugateGradient : IterativeSolverBase
{
    protected override SolveReport SolveCore(SolveContext context, Tensor b, Tensor? x0, SolverOptions options)
    {
        double bNorm = Norm(b);
        if (bNorm == 0) return new SolveReport(zeros_like(b), 0, 0, 0, SolveStatus.Converged);
        double target = options.RelativeTolerance * bNorm;

        var x = x0 ?? zeros_like(b);
        var r = x0 is null ? b.clone() : b - context.Apply(x);          // r₀ = b − A x₀
        double rNorm = Norm(r);
        if (!double.IsFinite(rNorm)) return Report(x, 0, double.NaN, bNorm, SolveStatus.NonFinite);
        if (rNorm <= target) return Report(x, 0, rNorm, bNorm, SolveStatus.Converged);

        var p = context.Precondition(r).clone();                          // p₀ = z₀ = P r₀
        double rz = Dot(r, p);
        if (!double.IsFinite(rz)) return Report(x, 0, rNorm, bNorm, SolveStatus.NonFinite);
        if (rz <= 0) return Report(x, 0, rNorm, bNorm, SolveStatus.Breakdown);

        for (int k = 1; k <= options.MaxIterations; k++)
        {
            using var iteration = NewDisposeScope();
            var q = context.Apply(p);                                     // q = A p
            double pq = Dot(p, q);
            if (!double.IsFinite(pq)) return Finish(x, k, rNorm, bNorm, SolveStatus.NonFinite);
            if (pq <= 0) return Finish(x, k, rNorm, bNorm, SolveStatus.Breakdown);
            double alpha = rz / pq;                                       // α = rᵀz / pᵀAp
            if (!(Math.Abs(alpha) <= FiniteGuard.LargestValue(x.dtype))) return Finish(x, k, rNorm, bNorm, SolveStatus.NonFinite);
            // A finite pᵀq means every pᵢqᵢ is finite, so p and q are: x + αp is finite short of an overflow (Finish checks).
            x.add_(p, alpha);                                             // x ← x + α p
            r.add_(q, -alpha);                                            // r ← r − α A p
            Tensor z;
            double rzNext;
            if (context.IsPreconditioned)
            {
                rNorm = Norm(r);
                if (!double.IsFinite(rNorm)) return Finish(x, k, double.NaN, bNorm, SolveStatus.NonFinite);
                if (rNorm <= target) return Finish(x, k, rNorm, bNorm, SolveStatus.Converged);
                z = context.Precondition(r);                              // z = P r
                rzNext = Dot(r, z);
            }
            else
            {
                z = r;                                                    // z = r: rᵀz = ‖r‖², one reduction for both
                rzNext = Dot(r, r);
                rNorm = Math.Sqrt(rzNext);
                if (!double.IsFinite(rNorm)) return Finish(x, k, double.NaN, bNorm, SolveStatus.NonFinite);
                if (rNorm <= target) return Finish(x, k, rNorm, bNorm, SolveStatus.Converged);
            }
            if (!double.IsFinite(rzNext)) return Finish(x, k, rNorm, bNorm, SolveStatus.NonFinite);
            if (rzNext <= 0) return Finish(x, k, rNorm, bNorm, SolveStatus.Breakdown);
            double beta = rzNext / rz;                                    // β = rₖ₊₁ᵀzₖ₊₁ / rₖᵀzₖ
            rz = rzNext;
            p.mul_(beta).add_(z);                                         // p ← z + β p
        }
        return Finish(x, options.MaxIterations, rNorm, bNorm, SolveStatus.MaxIterations);
    }

    /// <summary>
    /// The report for the iterate x, which the loop updates in place without a per-iteration check: if x + αp overflowed
    /// (finite p and α, entries beyond the dtype's range) x is not finite, and the report is <see cref="SolveStatus.NonFinite"/>
    /// with X = 0 (one check per solve). A step length α beyond the dtype's range (which libtorch cannot take as a scalar)
    /// stops the loop before the update, as <see cref="SolveStatus.NonFinite"/>.
    /// </summary>
    private static SolveReport Finish(Tensor x, int iterations, double rNorm, double bNorm, SolveStatus status)
    {
        if (IsFinite(x)) return Report(x, iterations, rNorm, bNorm, status);
        x.zero_();
        return Report(x, iterations, double.NaN, bNorm, SolveStatus.NonFinite);
    }

    private static SolveReport Report(Tensor x, int iterations, double rNorm, double bNorm, SolveStatus status) =>
        new(x, iterations, rNorm, rNorm / bNorm, status);
}
