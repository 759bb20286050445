using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Solvers.SolverProblems;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// The solvers' stopping decisions are invariant under b → c b and A → c A: every stop compares quantities of the same
/// scale (residual against ‖b‖, ‖A r‖ against ‖A‖ ‖r‖, pivots and βₖ₊₁ against ‖Tₖ‖), so in exact arithmetic the
/// iterates of (A, c b) are c times those of (A, b) and the iterates of (c A, b) are those of (A, b) divided by c. The
/// reference is the same solver on the unscaled system (and the direct solve), so a stop that reads an absolute
/// threshold, or an ‖A‖ estimate that counts β₁ = ‖b‖, shows up as a different iteration count or status.
/// </summary>
[Collection("Torch")]
public class SolverScaleInvarianceTests
{
    private const int N = 20;
    private static readonly SolverOptions Tight = new() { MaxIterations = 200, RelativeTolerance = 1e-10 };
    /// <summary>Stops well before n iterations, where the residual (~1e-7) is far above round-off.</summary>
    private static readonly SolverOptions Midway = new() { MaxIterations = 200, RelativeTolerance = 1e-6 };

    public static TheoryData<SolverKind, double, bool> Scalings()
    {
        var data = new TheoryData<SolverKind, double, bool>();
        foreach (var kind in new[] { SolverKind.Cg, SolverKind.Minres, SolverKind.MinresQlp })
        foreach (var scale in new[] { 1e12, 1e-12 })
        foreach (var jacobi in new[] { false, true })
            data.Add(kind, scale, jacobi);
        return data;
    }

    public static TheoryData<SolverKind, double> LeastSquaresScalings()
    {
        var data = new TheoryData<SolverKind, double>();
        foreach (var kind in new[] { SolverKind.Minres, SolverKind.MinresQlp })
        foreach (var scale in new[] { 1e12, 1e-12 })
            data.Add(kind, scale);
        return data;
    }

    /// <summary>A well-conditioned random SPD system (n = 20, condition 10), plain and with the Jacobi preconditioner.</summary>
    private static (Tensor A, Tensor B, Func<Tensor, Tensor>? P) Spd(bool jacobi)
    {
        var a = RandomSpd(N, condition: 10, seed: 7);
        var b = RandomVector(N, seed: 8);
        var d = a.diagonal().clone();
        return (a, b, jacobi ? r => r / d : null);
    }

    [Theory, MemberData(nameof(Scalings))]
    public void ScalingB_ScalesX_WithTheSameIterationsAndStatus(SolverKind kind, double scale, bool jacobi)
    {
        using var _ = NewDisposeScope();
        var (a, b, p) = Spd(jacobi);
        var solver = IterativeSolver.Create(kind);
        var reference = solver.Solve(v => a.mv(v), b, null, Midway, p);
        var scaled = solver.Solve(v => a.mv(v), scale * b, null, Midway, p);

        Assert.Equal(SolveStatus.Converged, reference.Status);
        Assert.InRange(reference.Iterations, 2, N - 1);
        Assert.True(BackMultipliedResidual(a, reference.X, b) <= 1e-5, $"unscaled residual {BackMultipliedResidual(a, reference.X, b):E2}");
        Assert.Equal(reference.Status, scaled.Status);
        Assert.Equal(reference.Iterations, scaled.Iterations);
        TensorAssert.Close(scale * reference.X, scaled.X, rtol: 1e-12, label: $"x(c b) = c x(b), c = {scale:E0}");
        Assert.Equal(reference.RelativeResidual, scaled.RelativeResidual, tolerance: 1e-6 * reference.RelativeResidual);
    }

    [Theory, MemberData(nameof(Scalings))]
    public void ScalingA_DividesX_WithTheSameIterationsAndStatus(SolverKind kind, double scale, bool jacobi)
    {
        using var _ = NewDisposeScope();
        var (a, b, p) = Spd(jacobi);
        var solver = IterativeSolver.Create(kind);
        var reference = solver.Solve(v => a.mv(v), b, null, Midway, p);
        // The preconditioner approximates the inverse of the operator it is used with: P → P / c.
        Func<Tensor, Tensor>? scaledP = p is null ? null : r => p(r) / scale;
        var scaled = solver.Solve(v => scale * a.mv(v), b, null, Midway, scaledP);

        Assert.Equal(SolveStatus.Converged, reference.Status);
        Assert.InRange(reference.Iterations, 2, N - 1);
        Assert.Equal(reference.Status, scaled.Status);
        Assert.Equal(reference.Iterations, scaled.Iterations);
        TensorAssert.Close(reference.X / scale, scaled.X, rtol: 1e-12, label: $"x(c A) = x(A) / c, c = {scale:E0}");
        Assert.Equal(reference.RelativeResidual, scaled.RelativeResidual, tolerance: 1e-6 * reference.RelativeResidual);
    }

    /// <summary>
    /// The inconsistent singular system diag(3, 1, 0) x ≈ (3, 2, 1), which both MINRES variants stop by their least-squares
    /// test (hand-computed solutions: MINRES's point of K₂(A, b) is (1, 2, 4/3), MINRES-QLP's is A⁺b = (1, 2, 0)), with b
    /// scaled by c and, separately, A scaled by c.
    /// </summary>
    [Theory, MemberData(nameof(LeastSquaresScalings))]
    public void InconsistentSingularSystem_LeastSquaresStop_IsScaleInvariant(SolverKind kind, double scale)
    {
        using var _ = NewDisposeScope();
        var d = tensor(new[] { 3.0, 1.0, 0.0 });
        var b = tensor(new[] { 3.0, 2.0, 1.0 });
        var expected = kind == SolverKind.Minres ? tensor(new[] { 1.0, 2.0, 4.0 / 3 }) : tensor(new[] { 1.0, 2.0, 0.0 });
        var solver = IterativeSolver.Create(kind);
        var reference = solver.Solve(v => d * v, b, null, Tight);
        var scaledB = solver.Solve(v => d * v, scale * b, null, Tight);
        var scaledA = solver.Solve(v => scale * d * v, b, null, Tight);

        Assert.Equal(SolveStatus.Converged, reference.Status);
        TensorAssert.Close(expected, reference.X, rtol: 1e-10, label: "unscaled least-squares solution");
        Assert.InRange(reference.RelativeResidual, 0.2, 0.3);     // ‖(0, 0, 1)‖ / ‖b‖ ≈ 0.267
        foreach (var scaled in new[] { scaledB, scaledA })
        {
            Assert.Equal(reference.Status, scaled.Status);
            Assert.Equal(reference.Iterations, scaled.Iterations);
            Assert.InRange(scaled.RelativeResidual, 0.2, 0.3);
        }
        TensorAssert.Close(scale * expected, scaledB.X, rtol: 1e-10, label: $"x(c b), c = {scale:E0}");
        TensorAssert.Close(expected / scale, scaledA.X, rtol: 1e-10, label: $"x(c A), c = {scale:E0}");
    }
}
