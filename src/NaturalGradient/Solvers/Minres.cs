using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Solvers;

/// <summary>
/// MINRES for symmetric, possibly indefinite or singular A (Paige &amp; Saunders 1975; the recurrence of
/// Saunders' minres.m / SciPy's <c>minres</c>), with an optional symmetric positive definite preconditioner P ≈ A⁻¹.
/// Seed 001 (appendix 8.3) uses MINRES-type solvers "to better deal with singular and ill-conditioned matrices".
/// </summary>
/// <remarks>
/// <para>Each iteration is one Lanczos step (one product A v, one preconditioner application) followed by a Givens
/// rotation of the tridiagonal system; xₖ minimises ‖b − A x‖ (in the P-norm when preconditioned) over x₀ + the
/// Krylov space. For a consistent singular system it converges to a solution (the minimum-norm one from x₀ = 0);
/// for an inconsistent one it converges to a least-squares solution.</para>
/// <para>Stopping: <see cref="SolveStatus.Converged"/> when φ̄ₖ ≤ tol · ‖b‖ (φ̄ₖ is the residual norm the recurrence
/// carries: Euclidean without a preconditioner, √(rᵀPr) with one, compared with √(bᵀPb)), or when X is a
/// least-squares solution to tolerance, ‖A r‖ ≤ tol · ‖A‖ ‖r‖ (inconsistent singular systems; the report's
/// relative residual then stays large). <see cref="SolveStatus.Breakdown"/> when P is not positive definite, when a
/// pivot γₖ ≤ 10 ε ‖A‖ (a null direction; X stays xₖ₋₁), when the estimated condition number of A exceeds 0.1/ε, or
/// when the Krylov space is exhausted without convergence (βₖ₊₁ ≤ ε ‖A‖). <see cref="SolveStatus.NonFinite"/> when a
/// product, a dot or the next iterate is not finite (e.g. a solution beyond the dtype's range); X is the last finite
/// iterate.</para>
/// <para>‖A‖ is estimated by the Frobenius norm of the Lanczos tridiagonal Tₖ₊₁,ₖ (α₁…αₖ, β₂…βₖ₊₁; of P^½AP^½ when
/// preconditioned). Unlike minres.m and SciPy's <c>minres</c>, whose estimate also counts β₁ = ‖r₀‖ (which is not an
/// entry of T), it leaves β₁ out, as minresqlp.m does (Choi, Paige &amp; Saunders 2011): every stop then compares
/// quantities of one scale, so the iteration count and status are unchanged under b → c b (X → c X) and A → c A
/// (X → X / c). With β₁ counted, ‖b‖ ≫ ‖A‖ made the least-squares stop fire at the first iteration with X = x₀.</para>
/// </remarks>
public sealed class Minres : IterativeSolverBase
{
    protected override SolveReport SolveCore(SolveContext context, Tensor b, Tensor? x0, SolverOptions options)
    {
        const double eps = 2.220446049250313e-16;
        var x = x0 ?? zeros_like(b);
        var r1 = x0 is null ? b.clone() : b - context.Apply(x);        // r₁ = b − A x₀
        var y = context.Precondition(r1);                              // y = P r₁
        double beta1 = Dot(r1, y);
        if (!double.IsFinite(beta1)) return new SolveReport(x, 0, double.NaN, double.NaN, SolveStatus.NonFinite);
        if (beta1 < 0) return new SolveReport(x, 0, double.NaN, double.NaN, SolveStatus.Breakdown);

        double bNorm = !context.IsPreconditioned ? Norm(b)
            : x0 is null ? Math.Sqrt(beta1) : Math.Sqrt(Math.Max(Dot(b, context.Precondition(b)), 0));
        if (bNorm == 0) return new SolveReport(zeros_like(b), 0, 0, 0, SolveStatus.Converged);
        beta1 = Math.Sqrt(beta1);
        double target = options.RelativeTolerance * bNorm;
        if (beta1 <= target) return new SolveReport(x, 0, beta1, beta1 / bNorm, SolveStatus.Converged);

        // Lanczos and rotation state (Paige–Saunders notation).
        double oldb = 0, beta = beta1, dbar = 0, epsln = 0, phibar = beta1, cs = -1, sn = 0;
        double tnorm2 = 0, gmax = 0, gmin = double.MaxValue;
        var r2 = r1.clone();
        var w = zeros_like(b);
        var w2 = zeros_like(b);
        Tensor? w1 = null;

        SolveReport Report(int k, SolveStatus status) => new(x, k, phibar, phibar / bNorm, status);

        for (int k = 1; k <= options.MaxIterations; k++)
        {
            using var iteration = NewDisposeScope();
            var v = y / beta;                                          // vₖ = yₖ / βₖ
            var yNext = context.Apply(v);                              // A vₖ
            if (k >= 2) yNext = yNext - (beta / oldb) * r1;            //   − (βₖ/βₖ₋₁) rₖ₋₁
            double alfa = Dot(v, yNext);                               // αₖ = vₖᵀ A vₖ
            yNext = yNext - (alfa / beta) * r2;                        //   − (αₖ/βₖ) rₖ
            if (!double.IsFinite(alfa)) return Report(k, SolveStatus.NonFinite);
            Keep(ref r1, r2.alias());
            Keep(ref r2, yNext);
            Keep(ref y, context.Precondition(r2));                     // yₖ₊₁ = P rₖ₊₁
            oldb = beta;
            double betaSquared = Dot(r2, y);
            if (!double.IsFinite(betaSquared)) return Report(k, SolveStatus.NonFinite);
            if (betaSquared < 0) return Report(k, SolveStatus.Breakdown);
            beta = Math.Sqrt(betaSquared);                             // βₖ₊₁
            // ‖Tₖ₊₁,ₖ‖²_F: column k holds βₖ (k ≥ 2), αₖ, βₖ₊₁. β₁ = ‖r₀‖ is not an entry of T: counting it (as minres.m
            // and SciPy do) makes the estimate, and every stop that uses it, depend on the scale of b.
            tnorm2 += alfa * alfa + beta * beta + (k >= 2 ? oldb * oldb : 0);

            // Apply the previous rotation Qₖ₋₁, then compute and apply Qₖ.
            double oldeps = epsln;
            double delta = cs * dbar + sn * alfa;
            double gbar = sn * dbar - cs * alfa;
            epsln = sn * beta;
            dbar = -cs * beta;
            double root = Hypot(gbar, dbar);
            double gamma = Hypot(gbar, beta);
            double aNorm = Math.Sqrt(tnorm2);

            // ‖A rₖ₋₁‖ / (‖A‖ ‖rₖ₋₁‖) = root / ‖A‖: xₖ₋₁ already is a least-squares solution (inconsistent singular A).
            // At k = 1 root = ‖A‖ (both are ‖[α₁ β₂]‖), so this fires there only when A r₀ = 0.
            if (root <= options.RelativeTolerance * aNorm) return Report(k, SolveStatus.Converged);
            // A zero pivot γₖ would send xₖ to infinity along a null direction: keep xₖ₋₁.
            if (gamma <= 10 * eps * aNorm) return Report(k, SolveStatus.Breakdown);
            cs = gbar / gamma;
            sn = beta / gamma;
            double phi = cs * phibar;
            double phibarNext = sn * phibar;

            // wₖ = (vₖ − εₖ wₖ₋₂ − δₖ wₖ₋₁) / γₖ, xₖ = xₖ₋₁ + φₖ wₖ.
            var wNext = (v - oldeps * w2 - delta * w) / gamma;
            var xNext = x + phi * wNext;
            if (!IsFinite(xNext)) return Report(k, SolveStatus.NonFinite);
            x.copy_(xNext);
            phibar = phibarNext;
            if (w1 is not null) w1.Dispose();
            w1 = w2;
            w2 = w;
            w = wNext.MoveToOuterDisposeScope();

            gmax = Math.Max(gmax, gamma);
            gmin = Math.Min(gmin, gamma);
            if (phibar <= target) return Report(k, SolveStatus.Converged);
            if (gmax / gmin >= 0.1 / eps) return Report(k, SolveStatus.Breakdown);
            if (beta <= eps * aNorm) return Report(k, SolveStatus.Breakdown);        // Krylov space exhausted: βₖ₊₁ ≈ 0
        }
        return Report(options.MaxIterations, SolveStatus.MaxIterations);
    }

    private static double Hypot(double a, double b)
    {
        double scale = Math.Max(Math.Abs(a), Math.Abs(b));
        if (scale == 0) return 0;
        double ra = a / scale, rb = b / scale;
        return scale * Math.Sqrt(ra * ra + rb * rb);
    }
}
