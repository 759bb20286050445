using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Engine;

[Collection("Torch")]
public class NaturalGradientSolveTests
{
    private const double Damping = 1e-2;

    // m smaller than the layer widths, and m larger than them (TENGraD's Gram matrix is m × m).
    public static TheoryData<int[], int, LikelihoodKind, FisherKind, bool> Problems => new()
    {
        { new[] { 6, 8, 3 }, 3, LikelihoodKind.Gaussian, FisherKind.Empirical, true },
        { new[] { 3, 4, 2 }, 40, LikelihoodKind.Gaussian, FisherKind.Empirical, true },
        { new[] { 5, 7, 6, 4 }, 4, LikelihoodKind.Categorical, FisherKind.Exact, true },
        { new[] { 2, 3, 3 }, 25, LikelihoodKind.Categorical, FisherKind.MonteCarlo, false },
        { new[] { 4, 5, 2 }, 11, LikelihoodKind.Bernoulli, FisherKind.Exact, false },
    };

    private static PreconditionerOptions Options(CurvatureStructure s, FisherKind f) =>
        new() { Structure = s, Fisher = f, Damping = Damping, MonteCarloSamples = 2, Seed = 3 };

    [Theory]
    [MemberData(nameof(Problems))]
    public void ExactNgd_EqualsDirectSolveWithBruteForceFisher(int[] sizes, int m, LikelihoodKind kind, FisherKind _, bool bias)
    {
        // The brute-force reference is the empirical Fisher, so every problem runs with it (the data's Fisher kind is unused).
        using var scope = NewDisposeScope();
        var p = EngineProblem.Create(sizes, m, kind, Options(CurvatureStructure.Exact, FisherKind.Empirical), bias);
        var f = BruteForce.EmpiricalFisher(BruteForce.Jacobian(
            BruteForce.PerExampleGradients(p.Model, p.Layers, p.X, p.Likelihood.PerExampleLoss, p.Y)));
        var g = p.FlatGradient();
        var expected = BruteForce.DampedSolve(f, Damping, g);
        p.Preconditioner.Precondition();
        TensorAssert.Close(expected, p.FlatGradient(), rtol: 1e-9);
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void BlockDiagonal_EqualsPerBlockSolveOfTheExactMetric(int[] sizes, int m, LikelihoodKind kind, FisherKind fisher, bool bias)
    {
        using var scope = NewDisposeScope();
        var exact = EngineProblem.Create(sizes, m, kind, Options(CurvatureStructure.Exact, fisher), bias);
        var dense = ((ExactCurvature)exact.Preconditioner.Curvature).ToDense();
        var block = EngineProblem.Create(sizes, m, kind, Options(CurvatureStructure.BlockDiagonal, fisher), bias);
        var grads = block.Preconditioner.GradientMatrices();
        var actual = block.Preconditioner.Solve(grads, Damping);
        long offset = 0;
        for (int l = 0; l < grads.Count; l++)
        {
            long n = grads[l].numel();
            var sub = dense.narrow(0, offset, n).narrow(1, offset, n);
            TensorAssert.Close(BruteForce.DampedSolve(sub, Damping, grads[l].flatten()), actual[l].flatten(), rtol: 1e-9, label: $"layer {l}");
            offset += n;
        }
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void Tengrad_EqualsBlockDiagonalExactly(int[] sizes, int m, LikelihoodKind kind, FisherKind fisher, bool bias)
    {
        using var scope = NewDisposeScope();
        var block = EngineProblem.Create(sizes, m, kind, Options(CurvatureStructure.BlockDiagonal, fisher), bias);
        var tengrad = EngineProblem.Create(sizes, m, kind, Options(CurvatureStructure.Tengrad, fisher), bias);
        var g = block.Preconditioner.GradientMatrices();
        TensorAssert.Close(EngineProblem.Flatten(g), EngineProblem.Flatten(tengrad.Preconditioner.GradientMatrices()), rtol: 1e-12, label: "same gradient");
        var expected = EngineProblem.Flatten(block.Preconditioner.Solve(g, Damping));
        var actual = EngineProblem.Flatten(tengrad.Preconditioner.Solve(g, Damping));
        double rel = TensorAssert.RelativeError(expected, actual);
        Assert.True(rel < 1e-9, $"TENGraD vs block-diagonal relative error {rel:E3}");
        // Its matrix-free products agree with the dense block too.
        for (int l = 0; l < g.Count; l++)
        {
            var name = block.Layers[l].Name;
            var denseBlock = ((BlockDiagonalCurvature)block.Preconditioner.Curvature).Block(name).ToDense();
            var v = randn_like(g[l]);
            TensorAssert.Close(denseBlock.mv(v.flatten()), ((BlockDiagonalCurvature)tengrad.Preconditioner.Curvature).Block(name).Multiply(v).flatten(), rtol: 1e-10);
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(30)]
    public void CenteredTengrad_EqualsCenteredBlockDiagonal(int m)
    {
        using var scope = NewDisposeScope();
        PreconditionerOptions Centered(CurvatureStructure s) => Options(s, FisherKind.Empirical) with { Form = MetricForm.Centered };
        var block = EngineProblem.Create(new[] { 5, 6, 3 }, m, LikelihoodKind.Categorical, Centered(CurvatureStructure.BlockDiagonal));
        var tengrad = EngineProblem.Create(new[] { 5, 6, 3 }, m, LikelihoodKind.Categorical, Centered(CurvatureStructure.Tengrad));
        var g = block.Preconditioner.GradientMatrices();
        double rel = TensorAssert.RelativeError(EngineProblem.Flatten(block.Preconditioner.Solve(g, Damping)),
            EngineProblem.Flatten(tengrad.Preconditioner.Solve(g, Damping)));
        Assert.True(rel < 1e-9, $"centred TENGraD vs centred block relative error {rel:E3}");
        var uncentered = EngineProblem.Create(new[] { 5, 6, 3 }, m, LikelihoodKind.Categorical, Options(CurvatureStructure.Tengrad, FisherKind.Empirical));
        Assert.True(TensorAssert.RelativeError(EngineProblem.Flatten(uncentered.Preconditioner.Solve(g, Damping)),
            EngineProblem.Flatten(tengrad.Preconditioner.Solve(g, Damping))) > 1e-3, "centring must change the step");
    }

    [Fact]
    public void Diagonal_EqualsDiagonalOfTheDenseBlock()
    {
        using var scope = NewDisposeScope();
        var block = EngineProblem.Create(new[] { 4, 5, 3 }, 9, LikelihoodKind.Categorical, Options(CurvatureStructure.BlockDiagonal, FisherKind.Exact));
        var diagonal = EngineProblem.Create(new[] { 4, 5, 3 }, 9, LikelihoodKind.Categorical, Options(CurvatureStructure.Diagonal, FisherKind.Exact));
        foreach (var layer in block.Layers)
        {
            var dense = ((BlockDiagonalCurvature)block.Preconditioner.Curvature).Block(layer.Name).ToDense();
            var diag = ((BlockDiagonalCurvature)diagonal.Preconditioner.Curvature).Block(layer.Name).ToDense();
            TensorAssert.Close(torch.diag(dense.diagonal()), diag, rtol: 1e-12);
        }
    }

    [Fact]
    public void Diagonal_OnAConvLayer_EqualsDiagonalOfTheDenseBlock()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        nn.Module<Tensor, Tensor> Model() => nn.Sequential(
            ("conv", nn.Conv2d(2, 3, 3, padding: 1, dtype: ScalarType.Float64)), ("act", nn.Tanh()),
            ("flat", nn.Flatten()), ("fc", nn.Linear(3 * 4 * 4, 2, dtype: ScalarType.Float64)));
        var model = Model();
        var x = randn(5, 2, 4, 4, dtype: ScalarType.Float64);
        var y = randn(5, 2, dtype: ScalarType.Float64);
        var lik = new GaussianLikelihood();
        var block = new NaturalGradientPreconditioner(model, lik, Options(CurvatureStructure.BlockDiagonal, FisherKind.Empirical));
        block.Backward(model.call(x), y);
        var diagonal = new NaturalGradientPreconditioner(model, lik, Options(CurvatureStructure.Diagonal, FisherKind.Empirical));
        model.zero_grad();
        diagonal.Backward(model.call(x), y);
        var dense = ((BlockDiagonalCurvature)block.Curvature).Block("conv").ToDense();
        var diag = ((BlockDiagonalCurvature)diagonal.Curvature).Block("conv").ToDense();
        TensorAssert.Close(torch.diag(dense.diagonal()), diag, rtol: 1e-12);
    }

    [Fact]
    public void ExactNgd_RefusesModelsAboveTheParameterLimit()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 10, 10, 2 });
        var ex = Assert.Throws<ModelNotSupportedException>(() => new NaturalGradientPreconditioner(model, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Exact, MaxExactParameters = 100 }));
        Assert.Contains("132 covered parameters > the limit of 100", ex.Message);
    }

    [Fact]
    public void Precondition_LeavesUncoveredParametersWithTheirPlainGradient()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 3, 4, 2 });
        var pre = new NaturalGradientPreconditioner(model, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.BlockDiagonal, IncludeLayer = name => name == "fc1", Damping = Damping });
        var x = TestModels.Inputs(6, 3);
        var y = TestModels.Inputs(6, 2, seed: 5);
        pre.Backward(model.call(x), y);
        var fc0 = model.named_parameters().Where(p => p.name.StartsWith("fc0")).Select(p => p.parameter.grad!.clone()).ToList();
        var fc1Before = pre.GradientMatrices()[0];
        pre.Precondition();
        var fc0After = model.named_parameters().Where(p => p.name.StartsWith("fc0")).Select(p => p.parameter.grad!).ToList();
        for (int i = 0; i < fc0.Count; i++) TensorAssert.Close(fc0[i], fc0After[i], rtol: 0);
        Assert.True(TensorAssert.RelativeError(fc1Before, pre.GradientMatrices()[0]) > 1e-3, "fc1's gradient should have been preconditioned");
    }
}
