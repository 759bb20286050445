using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Solvers;

/// <summary>
/// MINRES-QLP for symmetric, possibly singular and incompatible A (Choi, Paige &amp; Saunders 2011, "MINRES-QLP: a
/// Krylov subspace method for indefinite or singular symmetric systems", SIAM J. Sci. Comput. 33(4); Choi &amp;
/// Saunders 2014, ACM TOMS algorithm 937). Seed 001 (appendix 8.3) names it for singular metrics.
/// </summary>
/// <remarks>
/// <para>Each iteration is one preconditioned Lanczos step (one product A v, one preconditioner application), a QR
/// factorisation of the tridiagonal Tₖ₊₁,ₖ = Qₖ [Rₖ; 0] by Givens reflections (as MINRES), and in addition an LQ
/// factorisation Rₖ = Lₖ Pₖ by two more reflections on the right. The iterate is xₖ = Wₖ tₖ with Wₖ = Vₖ Pₖᵀ and
/// Lₖ tₖ = zₖ, updated by short recurrences (the last two directions are finished at the end).</para>
/// <para>What it adds to <see cref="Minres"/>: on an incompatible (inconsistent) singular system MINRES returns a
/// least-squares solution with a component in the null space of A, whereas MINRES-QLP returns the minimum-length
/// least-squares solution A⁺b (from x₀ = 0): when the last diagonal element μ̄ₖ of Lₖ is negligible, ‖A‖ ε-small, the
/// corresponding component τₖ is dropped instead of being divided by ~0 (the system is declared incompatible).</para>
/// <para>Stopping: <see cref="SolveStatus.Converged"/> when the recurrence's residual |ζ̄ₖ₊₁| ≤ max(tol, ε/2) · ‖b‖
/// (P-norm when preconditioned), or when xₖ is a least-squares solution to tolerance (‖A rₖ₋₁‖ ≤ tol · ‖A r₀‖ with
/// μ̄ₖ ≤ tol · ‖A‖, or the Krylov space is exhausted, βₖ₊₁ ≤ ε^¾ ‖A‖): the report's relative residual then stays
/// large. <see cref="SolveStatus.Breakdown"/> when P is not positive definite or the estimated condition number of A
/// reaches 1/ε. <see cref="SolveStatus.NonFinite"/> when a product or dot is not finite or the solution is beyond the
/// dtype's range; X is then x₀ plus the directions already finished.</para>
/// <para>‖A‖ is estimated by the Frobenius norm of the Lanczos tridiagonal Tₖ₊₁,ₖ (α₁…αₖ, β₂…βₖ₊₁), without
/// β₁ = ‖r₀‖ as in minresqlp.m, and every test is relative (to ‖b‖, ‖A r₀‖ or ‖A‖), so the iteration count and
/// status are unchanged under b → c b (X → c X) and A → c A (X → X / c).</para>
/// <para>Cost per iteration: one A v, one P r and about 12 vector operations; memory 7 vectors.</para>
/// </remarks>
public sealed class MinresQlp : IterativeSolverBase
{
    private const double Eps = 2.220446049250313e-16;

    protected override SolveReport SolveCore(SolveContext context, Tensor b, Tensor? x0, SolverOptions options)
    {
        double tol = options.RelativeTolerance;
        var start = x0;
        var z = start is null ? b.clone() : b - context.Apply(start);   // z₁ β₁ = r₀ (unpreconditioned Lanczos vector)
        var v = context.Precondition(z).clone();                       // v₁ β₁ = P r₀
        double beta1Squared = Dot(z, v);
        if (!double.IsFinite(beta1Squared)) return Finish(start, zeros_like(b), 0, double.NaN, double.NaN, SolveStatus.NonFinite);
        if (beta1Squared < 0) return Finish(start, zeros_like(b), 0, double.NaN, double.NaN, SolveStatus.Breakdown);

        double bNorm = !context.IsPreconditioned ? Norm(b)
            : start is null ? Math.Sqrt(beta1Squared) : Math.Sqrt(Math.Max(Dot(b, context.Precondition(b)), 0));
        if (bNorm == 0) return new SolveReport(zeros_like(b), 0, 0, 0, SolveStatus.Converged);
        double beta = Math.Sqrt(beta1Squared);
        if (beta <= tol * bNorm) return Finish(start, zeros_like(b), 0, beta, beta / bNorm, SolveStatus.Converged);
        z.div_(beta);
        v.div_(beta);

        var dx = zeros_like(b);           // x − x₀ without the last two directions
        var zPrevious = zeros_like(b);    // zₖ₋₁
        var wPrevious = zeros_like(b);    // wₖ₋₁ (ẘ)
        var w = zeros_like(b);            // w̄ₖ
        double target = tol * bNorm;
        double btol = Math.Pow(Eps, 0.75);

        // Givens reflections of the QR (c, s) and LQ (cp, sp, cd, sd) factorisations; Paige–Saunders/Choi notation.
        double zetaBar = beta, xiPrevious = 0, xi = 0;
        double tau = 0, tauPrevious = 0, tauPrevious2 = 0;
        double psiBarPrevious2 = 0, psiBarPrevious = 0, muBisPrevious2 = 0, muBisPrevious = 0, muBarPrevious = 0, muBar = 0;
        double cPrevious2 = 1, cPrevious = 1, sPrevious2 = 0, sPrevious = 0;
        double gammaBarPrevious = 0, aNormSquared = 0, muMin = 0, muMax = 0, kappa = 0, rNorm = beta;
        bool solved = false, incompatible = false;
        var status = SolveStatus.MaxIterations;
        int k = 0;

        while (k < options.MaxIterations)
        {
            k++;
            using var iteration = NewDisposeScope();
            // Lanczos: βₖ₊₁ zₖ₊₁ = A vₖ − αₖ zₖ − βₖ zₖ₋₁, vₖ₊₁ = P zₖ₊₁.
            var p = context.Apply(v);
            if (k >= 2) p = p - beta * zPrevious;
            double alpha = Dot(v, p);
            if (!double.IsFinite(alpha)) { status = SolveStatus.NonFinite; k--; break; }
            p = p - alpha * z;
            var vNext = context.Precondition(p);
            double betaNextSquared = Dot(p, vNext);
            if (!double.IsFinite(betaNextSquared)) { status = SolveStatus.NonFinite; k--; break; }
            if (betaNextSquared < 0) { status = SolveStatus.Breakdown; k--; break; }
            double betaNext = Math.Sqrt(betaNextSquared);
            // ‖Tₖ₊₁,ₖ‖²_F: column k holds βₖ (k ≥ 2), αₖ, βₖ₊₁; β₁ = ‖r₀‖ is not an entry of T (minresqlp.m leaves it
            // out too), so the estimate is independent of the scale of b.
            aNormSquared += alpha * alpha + betaNext * betaNext + (k >= 2 ? beta * beta : 0);
            // βₖ₊₁ negligible against ‖T‖: the Krylov space is exhausted (a relative test, so scaling A changes nothing).
            bool exhausted = betaNext <= btol * Math.Sqrt(aNormSquared);
            if (!exhausted)
            {
                vNext = vNext / betaNext;
                p = p / betaNext;
            }

            // QR of Tₖ₊₁,ₖ: apply Qₖ₋₂,ₖ₋₁ and Qₖ₋₁,ₖ to the new column, then form Qₖ,ₖ₊₁.
            double epsilonPrevious2 = 0, gammaPrevious = 0, lambdaBar;
            if (k >= 3)
            {
                epsilonPrevious2 = sPrevious2 * beta;
                gammaBarPrevious = -cPrevious2 * beta;
            }
            if (k == 2) gammaBarPrevious = beta;
            if (k >= 2)
            {
                gammaPrevious = cPrevious * gammaBarPrevious + sPrevious * alpha;
                lambdaBar = sPrevious * gammaBarPrevious - cPrevious * alpha;
            }
            else lambdaBar = alpha;
            var (c, s, lambda) = SymmetricGivens(lambdaBar, betaNext);
            double zeta = c * zetaBar;
            double zetaBarNext = s * zetaBar;

            // LQ of Rₖ = Lₖ Pₖ: reflections on the right mix the last three columns.
            double cp = 0, sp = 0, cd = 0, sd = 0, muPrevious2 = 0, psiPrevious2 = 0, rhoPrevious2 = 0;
            if (k == 1)
            {
                muBar = lambda;
            }
            else if (k == 2)
            {
                (cp, sp, muBisPrevious) = SymmetricGivens(muBarPrevious, gammaPrevious);
                psiBarPrevious = sp * lambda;
                muBar = -cp * lambda;
            }
            else
            {
                (cp, sp, muPrevious2) = SymmetricGivens(muBisPrevious2, epsilonPrevious2);
                psiPrevious2 = cp * psiBarPrevious2 + sp * gammaPrevious;
                double theta = sp * psiBarPrevious2 - cp * gammaPrevious;
                rhoPrevious2 = sp * lambda;
                double eta = -cp * lambda;
                (cd, sd, muBisPrevious) = SymmetricGivens(muBarPrevious, theta);
                psiBarPrevious = sd * eta;
                muBar = -cd * eta;
            }

            // Forward substitution Lₖ tₖ = zₖ for the last three components.
            if (k == 1)
            {
                tau = zeta / muBar;
            }
            else if (k == 2)
            {
                tauPrevious = tau * muBarPrevious / muBisPrevious;
                xi = zeta;
                tau = (xi - psiBarPrevious * tauPrevious) / muBar;
            }
            else
            {
                tauPrevious2 = tauPrevious * muBisPrevious2 / muPrevious2;
                tauPrevious = (xiPrevious - psiPrevious2 * tauPrevious2) / muBisPrevious;
                xi = zeta - rhoPrevious2 * tauPrevious2;
                tau = (xi - psiBarPrevious * tauPrevious) / muBar;
            }

            // Directions: the last columns of Wₖ = Vₖ Pₖᵀ; the finished one, wₖ₋₂, enters x now.
            if (k == 1)
            {
                w.copy_(v);
            }
            else if (k == 2)
            {
                var wBar = sp * w - cp * v;
                var wRing = cp * w + sp * v;
                wPrevious.copy_(wRing);
                w.copy_(wBar);
            }
            else
            {
                var wRingPrevious2 = wPrevious;           // ẘₖ₋₂
                var wBarPrevious = w;                     // w̄ₖ₋₁
                dx.add_(wRingPrevious2, alpha: cp * tauPrevious2).add_(v, alpha: sp * tauPrevious2);
                var wAux = sp * wRingPrevious2 - cp * v;
                var wRing = cd * wBarPrevious + sd * wAux;
                var wBar = sd * wBarPrevious - cd * wAux;
                wPrevious.copy_(wRing);
                w.copy_(wBar);
            }
            Keep(ref zPrevious, z.alias());
            Keep(ref z, p);
            Keep(ref v, vNext);

            // Estimates: ‖rₖ‖ = |ζ̄ₖ₊₁|, ‖A rₖ₋₁‖ = |ζ̄ₖ| √(λ̄ₖ² + (cₖ₋₁ βₖ₊₁)²), ‖A‖ from the Lanczos coefficients,
            // cond(A) from the diagonal of Lₖ.
            rNorm = Math.Abs(zetaBarNext);
            double arNorm = Math.Abs(zetaBar) * Math.Sqrt(lambdaBar * lambdaBar + (cPrevious * betaNext) * (cPrevious * betaNext));
            if (k == 1) kappa = tol * arNorm;
            double aNorm = Math.Sqrt(aNormSquared);
            double absMuBar = Math.Abs(muBar);
            if (k == 1) { muMin = muMax = absMuBar; }
            else if (k == 2) { muMax = Max(muMax, muBisPrevious, absMuBar); muMin = Min(muMin, muBisPrevious, absMuBar); }
            else { muMax = Max(muMax, muPrevious2, muBisPrevious, absMuBar); muMin = Min(muMin, muPrevious2, muBisPrevious, absMuBar); }
            bool illConditioned = 1 + muMin / muMax <= 1;
            solved = rNorm <= target || 1 + rNorm / bNorm <= 1;
            incompatible = !solved && ((arNorm <= kappa && absMuBar <= tol * aNorm) || exhausted);

            if (k >= 2)
            {
                sPrevious2 = sPrevious; cPrevious2 = cPrevious;
                xiPrevious = xi;
                muBisPrevious2 = muBisPrevious;
                psiBarPrevious2 = psiBarPrevious;
            }
            sPrevious = s; cPrevious = c;
            muBarPrevious = muBar;
            zetaBar = zetaBarNext;
            beta = betaNext;

            if (solved || incompatible) { status = SolveStatus.Converged; break; }
            if (illConditioned) { status = SolveStatus.Breakdown; break; }
        }

        // xₖ = x₀ + Σ finished directions + τₖ₋₁ wₖ₋₁ + τₖ wₖ; on an incompatible system τₖ (divided by μ̄ₖ ≈ 0) is dropped.
        // A break before the state changed (non-finite or indefinite P) finishes the previous iterate the same way.
        // A coefficient beyond the dtype's range (which libtorch cannot take as a scalar) makes xₖ overflow as well; the
        // report then holds x₀ plus the finished directions, whose residual the recurrence does not carry (NaN, as CG).
        double largest = FiniteGuard.LargestValue(dx.dtype);
        if ((k >= 2 && !(Math.Abs(tauPrevious) <= largest)) || (!incompatible && k >= 1 && !(Math.Abs(tau) <= largest)))
            return Finish(start, dx, k, double.NaN, double.NaN, SolveStatus.NonFinite);
        var x = dx.clone();
        if (k >= 2) x.add_(wPrevious, alpha: tauPrevious);
        if (!incompatible && k >= 1) x.add_(w, alpha: tau);
        if (!IsFinite(x)) return Finish(start, dx, k, double.NaN, double.NaN, SolveStatus.NonFinite);
        return Finish(start, x, k, rNorm, rNorm / bNorm, status);
    }

    private static SolveReport Finish(Tensor? start, Tensor dx, int iterations, double rNorm, double relative, SolveStatus status) =>
        new(start is null ? dx : start + dx, iterations, rNorm, relative, status);

    /// <summary>The symmetric Givens reflection [c s; s −c] [a; b] = [r; 0] with r ≥ 0 (SYMGIVENS, Choi 2006 table 2.9).</summary>
    private static (double C, double S, double R) SymmetricGivens(double a, double b)
    {
        if (b == 0) return (a == 0 ? 1 : Math.Sign(a), 0, Math.Abs(a));
        if (a == 0) return (0, Math.Sign(b), Math.Abs(b));
        if (Math.Abs(b) > Math.Abs(a))
        {
            double t = a / b;
            double s = Math.Sign(b) / Math.Sqrt(1 + t * t);
            double c = s * t;
            return (c, s, b / s);
        }
        else
        {
            double t = b / a;
            double c = Math.Sign(a) / Math.Sqrt(1 + t * t);
            double s = c * t;
            return (c, s, a / c);
        }
    }

    private static double Max(params double[] values) => values.Max();
    private static double Min(params double[] values) => values.Min();
}
