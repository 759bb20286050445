using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Engine;

[Collection("Torch")]
public class FisherEstimatorTests
{
    public static TheoryData<int[], int, LikelihoodKind> Problems => new()
    {
        { new[] { 3, 4, 2 }, 5, LikelihoodKind.Gaussian },
        { new[] { 4, 3, 5, 3 }, 9, LikelihoodKind.Categorical },
        { new[] { 2, 6, 3 }, 4, LikelihoodKind.Bernoulli },
    };

    private static Tensor DenseMetric(EngineProblem p) => ((ExactCurvature)p.Preconditioner.Curvature).ToDense();

    [Theory]
    [MemberData(nameof(Problems))]
    public void EmpiricalFisher_EqualsPerExampleLoopReference(int[] sizes, int m, LikelihoodKind kind)
    {
        using var scope = NewDisposeScope();
        var p = EngineProblem.Create(sizes, m, kind, new PreconditionerOptions { Structure = CurvatureStructure.Exact });
        var reference = BruteForce.EmpiricalFisher(BruteForce.Jacobian(
            BruteForce.PerExampleGradients(p.Model, p.Layers, p.X, p.Likelihood.PerExampleLoss, p.Y)));
        TensorAssert.Close(reference, DenseMetric(p), rtol: 1e-10);
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void ExactFisher_EqualsExplicitJacobianGgn(int[] sizes, int m, LikelihoodKind kind)
    {
        using var scope = NewDisposeScope();
        var p = EngineProblem.Create(sizes, m, kind, new PreconditionerOptions { Structure = CurvatureStructure.Exact, Fisher = FisherKind.Exact });
        var reference = ExactFisherReference.Build(p.Model, p.Layers, p.X, p.Likelihood);
        TensorAssert.Close(reference, DenseMetric(p), rtol: 1e-10);
    }

    [Theory]
    [MemberData(nameof(Problems))]
    public void MonteCarloFisher_ConvergesToExactFisherInExpectation(int[] sizes, int m, LikelihoodKind kind)
    {
        using var scope = NewDisposeScope();
        const int samples = 4000;
        var p = EngineProblem.Create(sizes, m, kind, new PreconditionerOptions
        {
            Structure = CurvatureStructure.Exact, Fisher = FisherKind.MonteCarlo, MonteCarloSamples = samples, Seed = 7,
        });
        var exact = ExactFisherReference.Build(p.Model, p.Layers, p.X, p.Likelihood);
        // Relative Frobenius error of a k-sample mean shrinks like 1/√k; 4000 samples give a few percent.
        double err = TensorAssert.RelativeError(exact, DenseMetric(p));
        Assert.True(err < 0.08, $"MC Fisher relative error {err:F4} with {samples} samples");
        Assert.True(err > 1e-6, "a Monte-Carlo estimate should not equal the exact Fisher to round-off");
    }

    [Fact]
    public void CenteredCovariance_EqualsPerExampleLoopReference()
    {
        using var scope = NewDisposeScope();
        var p = EngineProblem.Create(new[] { 3, 4, 2 }, 7, LikelihoodKind.Gaussian,
            new PreconditionerOptions { Structure = CurvatureStructure.Exact, Form = MetricForm.Centered });
        var j = BruteForce.Jacobian(BruteForce.PerExampleGradients(p.Model, p.Layers, p.X, p.Likelihood.PerExampleLoss, p.Y));
        var centred = j - j.mean(new long[] { 0 }, keepdim: true);
        TensorAssert.Close(centred.t().mm(centred) / 7, DenseMetric(p), rtol: 1e-10);
    }

    [Fact]
    public void MetricFromAnotherBatch_EqualsMetricComputedOnThatBatch()
    {
        using var scope = NewDisposeScope();
        var options = new PreconditionerOptions { Structure = CurvatureStructure.Exact, Fisher = FisherKind.Exact };
        var p = EngineProblem.Create(new[] { 3, 4, 2 }, 5, LikelihoodKind.Gaussian, options);
        var other = TestModels.Inputs(6, 3, seed: 42);
        p.Model.zero_grad();
        p.Preconditioner.Backward(p.Model.call(p.X), p.Y, metricInputs: other);
        var reference = ExactFisherReference.Build(p.Model, p.Layers, other, p.Likelihood);
        TensorAssert.Close(reference, DenseMetric(p), rtol: 1e-10);
    }
}
