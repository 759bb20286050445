using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>Small seeded float64 linear systems for the solver tests.</summary>
public static class SolverProblems
{
    /// <summary>A random symmetric positive definite n × n matrix Q diag(λ) Qᵀ with eigenvalues in [1, condition].</summary>
    public static Tensor RandomSpd(long n, double condition = 10, long seed = 0)
    {
        manual_seed(seed);
        var (q, _) = linalg.qr(randn(n, n, dtype: ScalarType.Float64));
        var eig = logspace(0, Math.Log10(condition), n, dtype: ScalarType.Float64);
        return q.mm(diag(eig)).mm(q.t());
    }

    /// <summary>The 1-D Poisson matrix tridiag(−1, 2, −1) (n × n).</summary>
    public static Tensor Poisson1D(long n) =>
        2 * eye(n, dtype: ScalarType.Float64)
        - diag(ones(n - 1, dtype: ScalarType.Float64), 1)
        - diag(ones(n - 1, dtype: ScalarType.Float64), -1);

    public static Tensor RandomVector(long n, long seed = 1)
    {
        manual_seed(seed);
        return randn(n, dtype: ScalarType.Float64);
    }

    /// <summary>‖b − A x‖ / ‖b‖ computed directly (not from the solver's recurrence).</summary>
    public static double BackMultipliedResidual(Tensor a, Tensor x, Tensor b) =>
        (b - a.mv(x)).norm().item<double>() / b.norm().item<double>();
}
