using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Solvers.SolverProblems;

namespace NaturalGradient.Tests.Methods;

/// <summary>MINRES-QLP against the pseudo-inverse (Choi, Paige &amp; Saunders 2011): singular and incompatible systems.</summary>
[Collection("Torch")]
public class MinresQlpTests
{
    private static readonly SolverOptions Tight = new() { MaxIterations = 200, RelativeTolerance = 1e-10 };

    /// <summary>A = Q diag(eigenvalues) Qᵀ with a seeded random orthogonal Q.</summary>
    private static Tensor Rotated(double[] eigenvalues, long seed)
    {
        manual_seed(seed);
        var (q, _) = linalg.qr(randn(eigenvalues.Length, eigenvalues.Length, dtype: ScalarType.Float64));
        return q.mm(diag(tensor(eigenvalues))).mm(q.t());
    }

    [Fact]
    public void IncompatibleSingularSystem_ReturnsThePseudoInverseSolution_WhereMinresDoesNot()
    {
        using var _ = NewDisposeScope();
        var a = Rotated(new[] { 3.0, 1.0, 0.5, -2.0, 0.0, 0.0 }, seed: 21);   // indefinite, rank 4
        var b = RandomVector(6, seed: 22);                                    // has a component in null(A)
        var pinv = linalg.pinv(a, hermitian: true).mv(b);

        var qlp = new MinresQlp().Solve(v => a.mv(v), b, null, Tight);
        Assert.Equal(SolveStatus.Converged, qlp.Status);
        TensorAssert.Close(pinv, qlp.X, rtol: 1e-8, label: "MINRES-QLP vs A⁺b");

        var minres = new Minres().Solve(v => a.mv(v), b, null, Tight);
        // MINRES also finds a least-squares solution (A x equals the projection of b on range A) …
        TensorAssert.Close(a.mv(pinv), a.mv(minres.X), rtol: 1e-6, label: "MINRES is least squares");
        // … but not the minimum-length one: it keeps a null-space component.
        double gap = TensorAssert.RelativeError(pinv, minres.X);
        Assert.True(gap > 1e-2, $"MINRES unexpectedly returned A⁺b (relative gap {gap:E2})");
        Assert.True(minres.X.norm().item<double>() > qlp.X.norm().item<double>() * 1.01);
    }

    [Fact]
    public void DiagonalIncompatibleSystem_MatchesTheHandComputedSolutions()
    {
        using var _ = NewDisposeScope();
        var a = diag(tensor(new[] { 3.0, 1.0, 0.0 }));
        var b = tensor(new[] { 3.0, 2.0, 1.0 });
        // K₂(A, b) = span{b, Ab}: MINRES's least-squares point is x = (4/3) b − (1/3) A b = (1, 2, 4/3); A⁺b = (1, 2, 0).
        TensorAssert.Close(tensor(new[] { 1.0, 2.0, 0.0 }), new MinresQlp().Solve(v => a.mv(v), b, null, Tight).X, rtol: 1e-10, label: "QLP");
        TensorAssert.Close(tensor(new[] { 1.0, 2.0, 4.0 / 3 }), new Minres().Solve(v => a.mv(v), b, null, Tight).X, rtol: 1e-10, label: "MINRES");
    }

    [Fact]
    public void ConsistentSingularPsd_EqualsPseudoInverse()
    {
        using var _ = NewDisposeScope();
        manual_seed(5);
        var j = randn(12, 30, dtype: ScalarType.Float64);
        var a = j.t().mm(j);
        var b = a.mv(RandomVector(30));
        var report = new MinresQlp().Solve(v => a.mv(v), b, null, Tight);
        Assert.Equal(SolveStatus.Converged, report.Status);
        TensorAssert.Close(linalg.pinv(a, hermitian: true).mv(b), report.X, rtol: 1e-6, label: "A⁺b");
    }

    [Fact]
    public void NonsingularIndefinite_MatchesDirectSolve_AndPreconditionedToo()
    {
        using var _ = NewDisposeScope();
        const int n = 30;
        var eig = Enumerable.Range(0, n).Select(i => (i % 2 == 0 ? 1.0 : -1.0) * Math.Pow(10, 2.0 * i / n)).ToArray();
        var a = Rotated(eig, seed: 9);
        var b = RandomVector(n);
        var plain = new MinresQlp().Solve(v => a.mv(v), b, null, Tight);
        Assert.Equal(SolveStatus.Converged, plain.Status);
        TensorAssert.Close(linalg.solve(a, b), plain.X, rtol: 1e-7, label: "indefinite");

        var d = tensor(eig);
        var diagonal = new MinresQlp().Solve(v => d * v, b, null, Tight, r => r / d.abs());
        Assert.Equal(SolveStatus.Converged, diagonal.Status);
        Assert.True(diagonal.Iterations <= 3, $"{diagonal.Iterations} iterations");
        TensorAssert.Close(b / d, diagonal.X, rtol: 1e-8, label: "preconditioned");
    }

    [Fact]
    public void WarmStart_ReachesTheSameSolution()
    {
        using var _ = NewDisposeScope();
        var a = RandomSpd(20, condition: 100, seed: 3);
        var b = RandomVector(20);
        var x0 = RandomVector(20, seed: 8);
        var report = new MinresQlp().Solve(v => a.mv(v), b, x0, Tight);
        Assert.Equal(SolveStatus.Converged, report.Status);
        TensorAssert.Close(linalg.solve(a, b), report.X, rtol: 1e-7, label: "warm start");
    }
}
