using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Solves of symmetric positive definite systems from their Cholesky factors: TENGraD's push-through solves (a batch
/// of n × n float64 systems with one right-hand side each), its p_l × p_l parameter-space solve, and
/// <see cref="SafeCholesky.Solve"/>.
/// </summary>
internal static class CholeskySolve
{
    /// <summary>
    /// x = (L Lᵀ)⁻¹ B for <paramref name="lower"/> L (… × n × n, only the lower triangle read, as
    /// <c>linalg.cholesky_ex</c> returns it) and <paramref name="rhs"/> B (… × n × k, batch dimensions broadcast), by two
    /// triangular solves, L y = B then Lᵀ x = y: the computation of <c>torch.cholesky_solve</c> (LAPACK potrs is these two
    /// trsm), which on CPU took 1.1–3.6 times as long for one right-hand side (<c>perf --part kernels</c>, table "The
    /// push-through solve"; docs/PERFORMANCE.md). A fresh tensor in L's dtype.
    /// </summary>
    public static Tensor Apply(Tensor lower, Tensor rhs)
    {
        using var y = linalg.solve_triangular(lower, rhs, upper: false);
        return linalg.solve_triangular(lower.mT, y, upper: true);
    }
}
