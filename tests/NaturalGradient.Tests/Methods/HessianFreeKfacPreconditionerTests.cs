using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;
using NaturalGradient.Tests.Engine;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Methods;

/// <summary>Hessian-free with K-FAC's inverse as the Krylov preconditioner: the same solution in fewer G-products.</summary>
[Collection("Torch")]
public class HessianFreeKfacPreconditionerTests
{
    [Fact]
    public void KfacPreconditioner_SameAnswerAsTheDenseSolve_InFewerIterations()
    {
        using var _ = NewDisposeScope();
        const double lambda = 1e-4;
        var model = TestModels.Mlp(new[] { 5, 8, 3 }, seed: 21);
        var x = TestModels.Inputs(40, 5, seed: 22) * logspace(-1, 1, 5, dtype: ScalarType.Float64);
        manual_seed(23);
        var y = randint(0, 3, new long[] { 40 });
        var likelihood = new CategoricalLikelihood();

        (Tensor X, SolveReport Report, long Products) Solve(HessianFreeOptions options)
        {
            using var pre = new NaturalGradientPreconditioner(model, likelihood,
                new PreconditionerOptions { Structure = CurvatureStructure.HessianFree, Fisher = FisherKind.Exact, Damping = lambda, HessianFree = options });
            model.zero_grad();
            pre.Backward(model.call(x), y);
            var delta = pre.Solve(pre.GradientMatrices(), lambda);
            var curvature = (HessianFreeCurvature)pre.Curvature;
            return (EngineProblem.Flatten(delta), curvature.LastReport!, curvature.TotalProducts);
        }

        model.zero_grad();
        likelihood.Loss(model.call(x), y).backward();
        var layers = new NaturalGradient.Capture.LayerCapture(model).Layers.Select(l => l.Adapter).ToList();
        var g = cat(layers.Select(l => l.GradientMatrix().flatten()).ToArray());
        var f = ExactFisherReference.Build(model, layers, x, likelihood);
        var expected = BruteForce.DampedSolve(f, lambda, g);

        foreach (var solver in new[] { SolverKind.Cg, SolverKind.Minres, SolverKind.MinresQlp })
        {
            var hf = new HessianFreeOptions { Solver = solver, RelativeTolerance = 1e-10, MaxIterations = 300, WarmStart = false };
            var plain = Solve(hf);
            var kfac = Solve(hf with { KfacPreconditioner = true });
            Assert.Equal(SolveStatus.Converged, kfac.Report.Status);
            TensorAssert.Close(expected, plain.X, rtol: 1e-5, label: "plain vs dense");
            TensorAssert.Close(expected, kfac.X, rtol: 1e-5, label: "K-FAC-preconditioned vs dense");
            Assert.True(kfac.Report.Iterations < plain.Report.Iterations,
                $"{solver}: K-FAC-preconditioned {kfac.Report.Iterations} vs plain {plain.Report.Iterations} iterations");
            Assert.True(kfac.Products < plain.Products, $"G-products {kfac.Products} vs {plain.Products}");
        }
    }

    [Fact]
    public void KfacAndDiagonalTogether_AreRefusedNamingTheOption()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new HessianFreeOptions { KfacPreconditioner = true, DiagonalPreconditioner = true }.Validate());
        Assert.Equal(nameof(HessianFreeOptions.KfacPreconditioner), ex.ParamName);
    }
}
