using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;
using NaturalGradient.Tests.Engine;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.HessianFree;

/// <summary>Hessian-free natural gradient against the dense exact Fisher (design-examples §7.8).</summary>
[Collection("Torch")]
public class HessianFreeCurvatureTests
{
    private const double Damping = 1e-2;

    private static PreconditionerOptions Options(HessianFreeOptions hf, FisherKind fisher = FisherKind.Empirical) =>
        new() { Structure = CurvatureStructure.HessianFree, Fisher = fisher, Damping = Damping, HessianFree = hf };

    public static TheoryData<SolverKind, LikelihoodKind> Cases => new()
    {
        { SolverKind.Cg, LikelihoodKind.Gaussian }, { SolverKind.Cg, LikelihoodKind.Bernoulli }, { SolverKind.Cg, LikelihoodKind.Categorical },
        { SolverKind.Minres, LikelihoodKind.Gaussian }, { SolverKind.Minres, LikelihoodKind.Bernoulli }, { SolverKind.Minres, LikelihoodKind.Categorical },
    };

    public static TheoryData<SolverKind> Solvers => new() { SolverKind.Cg, SolverKind.Minres };

    private static HessianFreeCurvature Hf(EngineProblem p) => (HessianFreeCurvature)p.Preconditioner.Curvature;

    [Theory, MemberData(nameof(Cases))]
    public void TightTolerance_ReachesTheDirectSolve(SolverKind solver, LikelihoodKind kind)
    {
        using var _ = NewDisposeScope();
        var p = EngineProblem.Create(new[] { 4, 6, 3 }, 5, kind, Options(new() { Solver = solver, RelativeTolerance = 1e-11, MaxIterations = 300 }));
        var g = p.FlatGradient();
        var actual = EngineProblem.Flatten(p.Preconditioner.Solve(p.Preconditioner.GradientMatrices(), Damping));
        Assert.Equal(SolveStatus.Converged, Hf(p).LastReport!.Status);
        var f = ExactFisherReference.Build(p.Model, p.Layers, p.X, p.Likelihood);
        TensorAssert.Close(BruteForce.DampedSolve(f, Damping, g), actual, rtol: 1e-8, label: $"{solver}, {kind}");
    }

    [Theory, MemberData(nameof(Solvers))]
    public void DefaultTolerance_BackMultipliedResidualWithinTolerance(SolverKind solver)
    {
        using var _ = NewDisposeScope();
        var p = EngineProblem.Create(new[] { 5, 8, 4 }, 6, LikelihoodKind.Categorical, Options(new() { Solver = solver }));
        var g = p.FlatGradient();
        var x = EngineProblem.Flatten(p.Preconditioner.Solve(p.Preconditioner.GradientMatrices(), Damping));
        var report = Hf(p).LastReport!;
        Assert.Equal(SolveStatus.Converged, report.Status);
        Assert.InRange(report.Iterations, 1, 50);
        var f = ExactFisherReference.Build(p.Model, p.Layers, p.X, p.Likelihood);
        var a = f + Damping * eye(f.shape[0], dtype: f.dtype);
        double residual = (a.mv(x) - g).norm().item<double>() / g.norm().item<double>();
        Assert.True(residual <= 1.0001e-4, $"‖(F + λI)x − g‖/‖g‖ = {residual:E3}");
        Assert.Equal(report.RelativeResidual, residual, 1e-8);
    }

    [Fact]
    public void Multiply_EqualsDenseExactFisherTimesV_InWBarOrder()
    {
        using var _ = NewDisposeScope();
        var p = EngineProblem.Create(new[] { 3, 5, 4 }, 4, LikelihoodKind.Bernoulli, Options(new()));
        manual_seed(9);
        var v = p.Layers.Select(l => randn(l.OutputDim, l.InputDim, dtype: ScalarType.Float64)).ToList();
        var actual = EngineProblem.Flatten(Hf(p).Multiply(p.Layers, v));
        var f = ExactFisherReference.Build(p.Model, p.Layers, p.X, p.Likelihood);
        TensorAssert.Close(f.mv(EngineProblem.Flatten(v)), actual, rtol: 1e-12, label: "G v");
    }

    [Fact]
    public void ConvNet_MultiplyAndSolve_MatchTheDenseExactFisher()
    {
        using var _ = NewDisposeScope();
        manual_seed(21);
        var model = nn.Sequential(
            ("conv", nn.Conv2d(2, 3, 2, padding: 1, dtype: ScalarType.Float64)), ("act", nn.Tanh()), ("flat", nn.Flatten()),
            ("head", nn.Linear(3 * 4 * 4, 3, dtype: ScalarType.Float64)));
        var x = randn(4, 2, 3, 3, dtype: ScalarType.Float64);
        var y = randint(0, 3, new long[] { 4 });
        var likelihood = new CategoricalLikelihood();
        using var pre = new NaturalGradientPreconditioner(model, likelihood, Options(new() { RelativeTolerance = 1e-11, MaxIterations = 400 }));
        pre.Backward(model.call(x), y);
        var grads = pre.GradientMatrices();
        var g = EngineProblem.Flatten(grads);
        var hf = (HessianFreeCurvature)pre.Curvature;
        var v = pre.Layers.Select(l => randn(l.OutputDim, l.InputDim, dtype: ScalarType.Float64)).ToList();
        var gv = EngineProblem.Flatten(hf.Multiply(pre.Layers, v));
        var solved = EngineProblem.Flatten(pre.Solve(grads, Damping));
        var f = ExactFisherReference.Build(model, pre.Layers, x, likelihood);
        TensorAssert.Close(f.mv(EngineProblem.Flatten(v)), gv, rtol: 1e-12, label: "conv G v");
        TensorAssert.Close(BruteForce.DampedSolve(f, Damping, g), solved, rtol: 1e-8, label: "conv solve");
    }

    [Theory, MemberData(nameof(Solvers))]
    public void WarmStart_ReducesIterationsOnARepeatedSolve(SolverKind solver)
    {
        using var _ = NewDisposeScope();
        var hfOptions = new HessianFreeOptions { Solver = solver };                   // default tolerance 1e-4
        var warm = EngineProblem.Create(new[] { 5, 8, 4 }, 6, LikelihoodKind.Gaussian, Options(hfOptions));
        var cold = EngineProblem.Create(new[] { 5, 8, 4 }, 6, LikelihoodKind.Gaussian, Options(hfOptions with { WarmStart = false }));
        var g = warm.Preconditioner.GradientMatrices();
        manual_seed(4);
        var nearby = g.Select(t => t + 1e-5 * t.norm() * randn_like(t)).ToList();   // e.g. the same batch after a tiny step

        warm.Preconditioner.Solve(g, Damping);
        int first = Hf(warm).LastReport!.Iterations;
        warm.Preconditioner.Solve(nearby, Damping);
        int warmSecond = Hf(warm).LastReport!.Iterations;
        cold.Preconditioner.Solve(g, Damping);
        cold.Preconditioner.Solve(nearby, Damping);
        int coldSecond = Hf(cold).LastReport!.Iterations;

        Assert.Equal(SolveStatus.Converged, Hf(warm).LastReport!.Status);
        Assert.True(warmSecond < first && warmSecond < coldSecond, $"first {first}, warm second {warmSecond}, cold second {coldSecond}");
    }

    [Theory, MemberData(nameof(Solvers))]
    public void WarmStart_SameSystemAgain_NoIterations_OrFewerWithMartensDecay(SolverKind solver)
    {
        using var _ = NewDisposeScope();
        var hfOptions = new HessianFreeOptions { Solver = solver, RelativeTolerance = 1e-6 };
        var exact = EngineProblem.Create(new[] { 5, 8, 4 }, 6, LikelihoodKind.Categorical, Options(hfOptions));
        var decayed = EngineProblem.Create(new[] { 5, 8, 4 }, 6, LikelihoodKind.Categorical, Options(hfOptions with { WarmStartDecay = 0.95 }));
        var g = exact.Preconditioner.GradientMatrices();
        exact.Preconditioner.Solve(g, Damping);
        int first = Hf(exact).LastReport!.Iterations;
        exact.Preconditioner.Solve(g, Damping);
        Assert.Equal(0, Hf(exact).LastReport!.Iterations);       // x₀ already solves it
        decayed.Preconditioner.Solve(g, Damping);
        decayed.Preconditioner.Solve(g, Damping);
        var again = Hf(decayed).LastReport!;
        Assert.Equal(SolveStatus.Converged, again.Status);
        Assert.InRange(again.Iterations, 1, first - 1);            // x₀ = 0.95 x*: residual 5 % of g to start
    }

    [Fact]
    public void DiagonalPreconditioner_WithTheExactFisher_IsDiagGPlusLambda()
    {
        using var _ = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 3, 5, 4 }, seed: 6);
        var x = TestModels.Inputs(7, 3, seed: 7);
        var likelihood = new CategoricalLikelihood();
        using var capture = new LayerCapture(model);
        var output = model.call(x);
        var recorded = capture.Recorded();
        var stats = new FisherEstimator(likelihood, FisherKind.Exact).Collect(capture, recorded, output, null);
        var layers = recorded.Select(l => l.Adapter).ToList();
        var layout = new ParameterLayout(layers);
        var d = DiagonalFisherPreconditioner.Denominator(layout, stats, Damping, exponent: 1, step: 0)!;
        var f = ExactFisherReference.Build(model, layers, x, likelihood);
        var diagWBar = SplitLike(f.diagonal() + Damping, layers);
        TensorAssert.Close(layout.ToFlat(diagWBar), d, rtol: 1e-12, label: "diag G + λ, parameter order");
        var half = DiagonalFisherPreconditioner.Denominator(layout, stats, Damping, exponent: 0.5, step: 0)!;
        TensorAssert.Close(d.sqrt(), half, rtol: 1e-12, label: "exponent");
    }

    /// <remarks>
    /// Jacobi helps when G is full rank (m · o ≥ p) but badly scaled, as here: a linear model on 30 features of
    /// scales 10⁻¹ … 10² (cond G ≈ 10⁶; after diagonal scaling, about that of a 256 × 31 Wishart matrix, ≈ 4).
    /// When m · o ≪ p, G + λI is a rank-m·o matrix plus a λ-cluster that CG resolves in about m·o + 1 iterations;
    /// diagonal scaling spreads that cluster and can make the solve slower (seen with a 6-10-3 net and m = 24).
    /// </remarks>
    [Theory, MemberData(nameof(Solvers))]
    public void DiagonalPreconditioner_BadlyScaledFullRankG_SameAnswerInFewerIterations(SolverKind solver)
    {
        using var _ = NewDisposeScope();
        var hfOptions = new HessianFreeOptions { Solver = solver, RelativeTolerance = 1e-12, MaxIterations = 400, WarmStart = false };
        const double lambda = 1e-6;
        var model = TestModels.Mlp(new[] { 30, 1 }, seed: 12);
        var x = TestModels.Inputs(256, 30, seed: 13) * logspace(-1, 2, 30, dtype: ScalarType.Float64);
        manual_seed(14);
        var y = randn(256, 1, dtype: ScalarType.Float64);
        IReadOnlyList<Tensor> Solve(HessianFreeOptions o, out SolveReport report)
        {
            using var pre = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), Options(o, FisherKind.Exact) with { Damping = lambda });
            model.zero_grad();
            pre.Backward(model.call(x), y);
            var result = pre.Solve(pre.GradientMatrices(), lambda);
            report = ((HessianFreeCurvature)pre.Curvature).LastReport!;
            return result;
        }
        var plainX = EngineProblem.Flatten(Solve(hfOptions, out var plain));
        var jacobiX = EngineProblem.Flatten(Solve(hfOptions with { DiagonalPreconditioner = true }, out var jacobi));
        // Direct: G = ĀᵀĀ / m for a linear model with a Gaussian likelihood (o = 1: W̄ order = parameter order).
        var a = cat(new[] { x, ones(256, 1, dtype: ScalarType.Float64) }, 1);
        var f = a.t().mm(a) / 256;
        model.zero_grad();
        new GaussianLikelihood().Loss(model.call(x), y).backward();
        var g = cat(new[] { model.parameters().First().grad!.flatten(), model.parameters().Last().grad!.flatten() });
        var expected = BruteForce.DampedSolve(f, lambda, g);
        Assert.Equal(SolveStatus.Converged, jacobi.Status);
        TensorAssert.Close(expected, plainX, rtol: 1e-5, label: "plain vs direct");
        TensorAssert.Close(expected, jacobiX, rtol: 1e-5, label: "Jacobi vs direct");
        Assert.True(jacobi.Iterations < plain.Iterations, $"Jacobi {jacobi.Iterations} vs plain {plain.Iterations} iterations");
    }

    [Fact]
    public void MinresWithoutDamping_SingularGgn_StaysFinite()
    {
        // m · o = 2 · 2 < p: G has rank ≤ 4 out of 26; g = (1/m) Σ J_rᵢᵀ (rᵢ − tᵢ) lies in range(G) (Gaussian), so λ = 0 is consistent.
        using var _ = NewDisposeScope();
        var p = EngineProblem.Create(new[] { 4, 4, 2 }, 2, LikelihoodKind.Gaussian,
            Options(new() { Solver = SolverKind.Minres, RelativeTolerance = 1e-10 }) with { Damping = 0 });
        var g = p.FlatGradient();
        var x = EngineProblem.Flatten(p.Preconditioner.Solve(p.Preconditioner.GradientMatrices(), 0));
        Assert.True(x.isfinite().all().item<bool>());
        var report = Hf(p).LastReport!;
        Assert.Equal(SolveStatus.Converged, report.Status);
        var f = ExactFisherReference.Build(p.Model, p.Layers, p.X, p.Likelihood);
        Assert.True((f.mv(x) - g).norm().item<double>() <= 1e-8 * g.norm().item<double>());
        TensorAssert.Close(linalg.pinv(f, hermitian: true).mv(g), x, rtol: 1e-6, label: "minimum-norm natural gradient");
    }

    /// <summary>
    /// A gradient holding NaN has no natural gradient. The solver answers such a right-hand side with its finite start
    /// (the warm start or zero); the curvature must not hand that back as Δ, which a step would apply as this gradient's
    /// natural gradient: it returns the gradient itself (not finite, so the step is rejected), reports NonFinite, and the
    /// next solve starts from the solution before the failure, so it equals the solve of a run without the bad gradient.
    /// </summary>
    [Fact]
    public void NonFiniteGradient_IsAStatus_AndTheResultIsNotAStep()
    {
        using var _ = NewDisposeScope();
        var p = EngineProblem.Create(new[] { 3, 4, 2 }, 3, LikelihoodKind.Gaussian, Options(new() { MaxIterations = 2 }));
        var good = p.Preconditioner.GradientMatrices().Select(t => t.clone()).ToList();
        var first = p.Preconditioner.Solve(good, Damping);
        var bad = good.Select(t => t.clone()).ToList();
        bad[0][0, 0] = double.NaN;
        var x = p.Preconditioner.Solve(bad, Damping);
        Assert.Equal(SolveStatus.NonFinite, Hf(p).LastReport!.Status);
        Assert.False(x[0].isfinite().all().item<bool>());
        Assert.True(double.IsNaN(x[0][0, 0].item<double>()));
        for (int i = 0; i < x.Count; i++) TensorAssert.Close(bad[i].nan_to_num(), x[i].nan_to_num(), rtol: 0, label: $"Δ of layer {i} is the non-finite gradient");
        // The warm start survives: the next solve equals the one that follows 'first' directly (two iterations from it).
        var after = p.Preconditioner.Solve(good, Damping);
        var reference = EngineProblem.Create(new[] { 3, 4, 2 }, 3, LikelihoodKind.Gaussian, Options(new() { MaxIterations = 2 }));
        reference.Preconditioner.Solve(good, Damping);
        var expected = reference.Preconditioner.Solve(good, Damping);
        for (int i = 0; i < after.Count; i++) TensorAssert.Close(expected[i], after[i], rtol: 0, label: $"solve after the failure, layer {i}");
        Assert.True(FiniteGuard.AllFinite(first));
    }

    [Fact]
    public void Misuse_Throws()
    {
        using var _ = NewDisposeScope();
        using var hf = new HessianFreeCurvature();
        var p = EngineProblem.Create(new[] { 3, 4, 2 }, 3, LikelihoodKind.Gaussian, Options(new()));
        var g = p.Preconditioner.GradientMatrices();
        Assert.Throws<InvalidOperationException>(() => hf.Precondition(p.Layers, g, Damping));
        Assert.Throws<InvalidOperationException>(() => hf.Update(new CurvatureBatch(Array.Empty<LayerStatistics>(), p.Likelihood, null, 0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.Preconditioner.Solve(g, -1));
        Assert.Throws<ArgumentException>(() => p.Preconditioner.Solve(g.Select(t => t.t()).ToList(), Damping));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HessianFreeCurvature(new() { MaxIterations = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HessianFreeCurvature(new() { RelativeTolerance = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HessianFreeCurvature(new() { WarmStartDecay = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new HessianFreeCurvature(new() { DiagonalExponent = 0 }));
    }

    private static List<Tensor> SplitLike(Tensor flat, IReadOnlyList<ILayerAdapter> layers)
    {
        var result = new List<Tensor>();
        long offset = 0;
        foreach (var l in layers)
        {
            result.Add(flat.narrow(0, offset, l.ParameterCount).reshape(l.OutputDim, l.InputDim));
            offset += l.ParameterCount;
        }
        return result;
    }
}
