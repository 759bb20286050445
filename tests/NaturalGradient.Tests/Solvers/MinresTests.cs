using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Solvers.SolverProblems;

namespace NaturalGradient.Tests.Solvers;

/// <summary>MINRES on what CG cannot do: indefinite and singular symmetric systems (seed 001 appendix 8.3).</summary>
[Collection("Torch")]
public class MinresTests
{
    [Fact]
    public void SymmetricIndefinite_MatchesDirectSolve()
    {
        using var _ = NewDisposeScope();
        const int n = 30;
        manual_seed(4);
        var (q, _) = linalg.qr(randn(n, n, dtype: ScalarType.Float64));
        var eig = cat(new[] { -logspace(0, 1, n / 2, dtype: ScalarType.Float64), logspace(0, 2, n / 2, dtype: ScalarType.Float64) });
        var a = q.mm(diag(eig)).mm(q.t());
        var b = RandomVector(n);
        var report = new Minres().Solve(v => a.mv(v), b, null, new SolverOptions { MaxIterations = 200, RelativeTolerance = 1e-10 });
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.True(BackMultipliedResidual(a, report.X, b) <= 1e-9);
        TensorAssert.Close(linalg.solve(a, b), report.X, rtol: 1e-7, label: "indefinite");
    }

    [Fact]
    public void ConjugateGradient_OnTheSameIndefiniteSystem_ReportsBreakdown()
    {
        using var _ = NewDisposeScope();
        var a = diag(tensor(new[] { 1.0, -1.0 }));
        var b = tensor(new[] { 0.0, 1.0 });     // p₀ = b has pᵀAp = −1
        var report = new ConjugateGradient().Solve(v => a.mv(v), b, null, new SolverOptions());
        Assert.Equal(SolveStatus.Breakdown, report.Status);
        Assert.True(report.X.isfinite().all().item<bool>());
        Assert.True(new Minres().Solve(v => a.mv(v), b, null, new SolverOptions()).Converged);
    }

    [Fact]
    public void SingularPsd_ConsistentRightHandSide_NoDamping_FiniteSmallResidual()
    {
        using var _ = NewDisposeScope();
        const int n = 30, rank = 12;
        manual_seed(5);
        var j = randn(rank, n, dtype: ScalarType.Float64);
        var a = j.t().mm(j);                                   // PSD, rank 12 (like a GGN from a small batch)
        var b = a.mv(RandomVector(n));                         // in range(A): consistent
        var report = new Minres().Solve(v => a.mv(v), b, null, new SolverOptions { MaxIterations = 100, RelativeTolerance = 1e-10 });
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.True(report.X.isfinite().all().item<bool>());
        Assert.True(BackMultipliedResidual(a, report.X, b) <= 1e-8, $"residual {BackMultipliedResidual(a, report.X, b):E2}");
        // From x₀ = 0 the iterates stay in range(A): the minimum-norm solution A⁺ b.
        TensorAssert.Close(linalg.pinv(a, hermitian: true).mv(b), report.X, rtol: 1e-6, label: "minimum-norm solution");
    }

    [Fact]
    public void SingularPsd_InconsistentRightHandSide_StopsAtAFiniteLeastSquaresSolution()
    {
        using var _ = NewDisposeScope();
        var a = diag(tensor(new[] { 3.0, 1.0, 0.0 }));
        var b = tensor(new[] { 3.0, 2.0, 1.0 });               // the last component is unreachable
        var report = new Minres().Solve(v => a.mv(v), b, null, new SolverOptions { RelativeTolerance = 1e-10 });
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.True(report.X.isfinite().all().item<bool>());
        // Least squares: A x = the projection of b on range(A); the normal-equation residual Aᵀ(b − Ax) vanishes.
        TensorAssert.Close(tensor(new[] { 3.0, 2.0, 0.0 }), a.mv(report.X), rtol: 1e-10, label: "A x");
        Assert.True(report.X.abs().max().item<double>() < 10, $"x = {report.X.str()}");
        Assert.InRange(report.RelativeResidual, 0.2, 0.3);     // ‖(0, 0, 1)‖ / ‖b‖ ≈ 0.267
    }

    [Fact]
    public void PreconditionedIndefinite_Converges()
    {
        using var _ = NewDisposeScope();
        const int n = 40;
        var d = cat(new[] { -logspace(0, 4, n / 2, dtype: ScalarType.Float64), logspace(0, 4, n / 2, dtype: ScalarType.Float64) });
        var b = RandomVector(n);
        var options = new SolverOptions { MaxIterations = 300, RelativeTolerance = 1e-10 };
        var report = new Minres().Solve(v => d * v, b, null, options, r => r / d.abs());
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.True(report.Iterations <= 3, $"{report.Iterations} iterations");
        TensorAssert.Close(b / d, report.X, rtol: 1e-8, label: "preconditioned indefinite");
    }

    [Fact]
    public void IndefinitePreconditioner_IsABreakdown()
    {
        using var _ = NewDisposeScope();
        var b = RandomVector(6);
        var report = new Minres().Solve(v => 2 * v, b, null, new SolverOptions(), r => -r);
        Assert.Equal(SolveStatus.Breakdown, report.Status);
        Assert.True(report.X.isfinite().all().item<bool>());
    }
}
