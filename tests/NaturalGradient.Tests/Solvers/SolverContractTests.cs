using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Solvers.SolverProblems;

namespace NaturalGradient.Tests.Solvers;

/// <summary>What both solvers must do on symmetric positive definite systems (design-examples §7.8).</summary>
[Collection("Torch")]
public class SolverContractTests
{
    public static TheoryData<SolverKind> Kinds => new() { SolverKind.Cg, SolverKind.Minres, SolverKind.MinresQlp };

    private static readonly SolverOptions Tight = new() { MaxIterations = 200, RelativeTolerance = 1e-10 };

    [Theory, MemberData(nameof(Kinds))]
    public void Identity_ConvergesInOneIteration(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var b = RandomVector(12);
        var report = IterativeSolver.Create(kind).Solve(v => v.clone(), b, null, Tight);
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.Equal(1, report.Iterations);
        TensorAssert.Close(b, report.X, rtol: 1e-14, label: "x = b");
    }

    [Theory, MemberData(nameof(Kinds))]
    public void ScaledIdentity_ReturnsBOverScale(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var b = RandomVector(12);
        var report = IterativeSolver.Create(kind).Solve(v => 4.0 * v, b, null, Tight);
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.Equal(1, report.Iterations);
        TensorAssert.Close(b / 4.0, report.X, rtol: 1e-14, label: "x = b / 4");
    }

    [Theory, MemberData(nameof(Kinds))]
    public void RandomSpd_ResidualSmall_AtMostNIterations(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        const int n = 30;
        var a = RandomSpd(n, condition: 10);
        var b = RandomVector(n);
        var report = IterativeSolver.Create(kind).Solve(v => a.mv(v), b, null, Tight);
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.InRange(report.Iterations, 1, n);
        Assert.True(BackMultipliedResidual(a, report.X, b) <= 1e-9, $"residual {BackMultipliedResidual(a, report.X, b):E2}");
        TensorAssert.Close(linalg.solve(a, b), report.X, rtol: 1e-7, label: "x vs linalg.solve");
        Assert.InRange(report.RelativeResidual, 0, 1e-10);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void Poisson1D_MatchesDirectSolve(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        const int n = 40;
        var a = Poisson1D(n);
        var b = RandomVector(n, seed: 3);
        var report = IterativeSolver.Create(kind).Solve(v => a.mv(v), b, null, Tight);
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.InRange(report.Iterations, 1, n + 2);   // n in exact arithmetic; round-off may add one or two
        Assert.True(BackMultipliedResidual(a, report.X, b) <= 1e-9);
        TensorAssert.Close(linalg.solve(a, b), report.X, rtol: 1e-7, label: "Poisson");
    }

    [Theory, MemberData(nameof(Kinds))]
    public void JacobiPreconditioner_IllConditionedDiagonal_NeedsFewerIterations(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        const int n = 60;
        var d = logspace(0, 6, n, dtype: ScalarType.Float64);
        var b = RandomVector(n);
        var options = new SolverOptions { MaxIterations = 500, RelativeTolerance = 1e-8 };
        var solver = IterativeSolver.Create(kind);
        var plain = solver.Solve(v => d * v, b, null, options);
        var jacobi = solver.Solve(v => d * v, b, null, options, r => r / d);
        Assert.Equal(SolveStatus.Converged, jacobi.Status);
        Assert.Equal(1, jacobi.Iterations);
        Assert.True(plain.Iterations > 10 * jacobi.Iterations, $"plain {plain.Iterations} vs Jacobi {jacobi.Iterations}");
        TensorAssert.Close(b / d, jacobi.X, rtol: 1e-10, label: "Jacobi solve");
    }

    [Theory, MemberData(nameof(Kinds))]
    public void WarmStartAtTheSolution_StopsWithoutIterating(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var a = RandomSpd(20);
        var b = RandomVector(20);
        var exact = linalg.solve(a, b);
        var report = IterativeSolver.Create(kind).Solve(v => a.mv(v), b, exact, new SolverOptions { RelativeTolerance = 1e-8 });
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.Equal(0, report.Iterations);
        TensorAssert.Close(exact, report.X, rtol: 1e-12);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void ZeroRightHandSide_ReturnsZeros(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var b = zeros(5, dtype: ScalarType.Float64);
        var report = IterativeSolver.Create(kind).Solve(v => 2 * v, b, null, new SolverOptions());
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.Equal(0, report.Iterations);
        Assert.Equal(0, report.X.abs().max().item<double>());
    }

    [Theory, MemberData(nameof(Kinds))]
    public void TooFewIterations_ReportsMaxIterations_WithAFiniteIterate(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var a = Poisson1D(50);
        var b = RandomVector(50);
        var report = IterativeSolver.Create(kind).Solve(v => a.mv(v), b, null, new SolverOptions { MaxIterations = 3, RelativeTolerance = 1e-10 });
        Assert.Equal(SolveStatus.MaxIterations, report.Status);
        Assert.Equal(3, report.Iterations);
        Assert.True(report.X.isfinite().all().item<bool>());
        Assert.True(BackMultipliedResidual(a, report.X, b) < 1);
    }

    [Theory, MemberData(nameof(Kinds))]
    public void NonFiniteOperator_IsAStatus_AndXStaysFinite(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var b = RandomVector(8);
        int calls = 0;
        var d = arange(1, 9, dtype: ScalarType.Float64);
        Tensor Apply(Tensor v) => ++calls >= 3 ? v * double.NaN : d * v;
        var report = IterativeSolver.Create(kind).Solve(Apply, b, null, new SolverOptions { RelativeTolerance = 1e-12 });
        Assert.Equal(SolveStatus.NonFinite, report.Status);
        Assert.True(report.X.isfinite().all().item<bool>());
    }

    /// <summary>A = 10⁻³⁰ I and b = 10¹⁰ in float32: every product and dot is finite, but the solution 10⁴⁰ is not
    /// representable.</summary>
    [Theory, MemberData(nameof(Kinds))]
    public void IterateBeyondTheDtypesRange_IsNonFinite_AndXStaysFinite(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var b = full(6, 1e10f, dtype: ScalarType.Float32);
        var report = IterativeSolver.Create(kind).Solve(v => v * 1e-30f, b, null, new SolverOptions { RelativeTolerance = 1e-6 });
        Assert.True(report.X.isfinite().all().item<bool>(), $"X = {report.X.max().item<float>()}");
        Assert.Equal(SolveStatus.NonFinite, report.Status);
        // A reported residual belongs to the X returned (or is NaN when the solver does not know it).
        if (!double.IsNaN(report.RelativeResidual))
        {
            double direct = (b - report.X * 1e-30f).norm().item<float>() / b.norm().item<float>();
            Assert.Equal(direct, report.RelativeResidual, tolerance: 1e-5);
        }
    }

    [Theory, MemberData(nameof(Kinds))]
    public void NonFiniteRightHandSide_IsAStatus(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var b = RandomVector(4);
        b[1] = double.PositiveInfinity;
        var report = IterativeSolver.Create(kind).Solve(v => v.clone(), b, null, new SolverOptions());
        Assert.Equal(SolveStatus.NonFinite, report.Status);
        Assert.True(report.X.isfinite().all().item<bool>());
    }

    [Theory, MemberData(nameof(Kinds))]
    public void BadShapes_Throw(SolverKind kind)
    {
        using var _ = NewDisposeScope();
        var solver = IterativeSolver.Create(kind);
        var b = RandomVector(6);
        var options = new SolverOptions();
        Assert.Throws<ArgumentException>(() => solver.Solve(v => v, b.reshape(2, 3), null, options));
        Assert.Throws<ArgumentException>(() => solver.Solve(v => v, b, zeros(5, dtype: ScalarType.Float64), options));
        Assert.Throws<ArgumentException>(() => solver.Solve(v => v.narrow(0, 0, 5), b, null, options));
        Assert.Throws<ArgumentException>(() => solver.Solve(v => v.clone(), b, null, options, r => r.reshape(2, 3)));
        Assert.Throws<ArgumentException>(() => solver.Solve(v => v, arange(6), null, options));
        Assert.Throws<ArgumentOutOfRangeException>(() => solver.Solve(v => v, b, null, new SolverOptions { MaxIterations = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => solver.Solve(v => v, b, null, new SolverOptions { RelativeTolerance = 0 }));
    }

    [Theory, MemberData(nameof(Kinds))]
    public void RepeatedSolves_KeepTheLiveTensorCountFlat(SolverKind kind)
    {
        var a = RandomSpd(25, condition: 50);
        var b = RandomVector(25);
        var solver = IterativeSolver.Create(kind);
        var options = new SolverOptions { RelativeTolerance = 1e-10 };
        long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        void OneSolve() { using var _ = NewDisposeScope(); solver.Solve(v => a.mv(v), b, null, options, r => r * 0.5); }
        OneSolve();
        long before = Live();
        for (int i = 0; i < 5; i++) OneSolve();
        Assert.Equal(before, Live());
    }
}
