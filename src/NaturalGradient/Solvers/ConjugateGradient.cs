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
            if (!double.IsFinite(pq)) return Report(x, k, rNorm, bNorm, SolveStatus.NonFinite);
            if (pq <= 0) return Report(x, k, rNorm, bNorm, SolveStatus.Breakdown);
            double alpha = rz / pq;                                       // α = rᵀz / pᵀAp
            var xNext = x + alpha * p;                                    // x ← x + α p
            if (!double.IsFinite(alpha) || !IsFinite(xNext)) return Report(x, k, rNorm, bNorm, SolveStatus.NonFinite);
            x.copy_(xNext);
            r.add_(q, -alpha);                                            // r ← r − α A p
            rNorm = Norm(r);
            if (!double.IsFinite(rNorm)) return Report(x, k, double.NaN, bNorm, SolveStatus.NonFinite);
            if (rNorm <= target) return Report(x, k, rNorm, bNorm, SolveStatus.Converged);

            var z = context.Precondition(r);                              // z = P r
            double rzNext = Dot(r, z);
            if (!double.IsFinite(rzNext)) return Report(x, k, rNorm, bNorm, SolveStatus.NonFinite);
            if (rzNext <= 0) return Report(x, k, rNorm, bNorm, SolveStatus.Breakdown);
            double beta = rzNext / rz;                                    // β = rₖ₊₁ᵀzₖ₊₁ / rₖᵀzₖ
            rz = rzNext;
            p.mul_(beta).add_(z);                                         // p ← z + β p
        }
        return Report(x, options.MaxIterations, rNorm, bNorm, SolveStatus.MaxIterations);
    }

    private static SolveReport Report(Tensor x, int iterations, double rNorm, double bNorm, SolveStatus status) =>
        new(x, iterations, rNorm, rNorm / bNorm, status);
}
