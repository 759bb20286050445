using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// Targets of the wrong shape are refused by every likelihood with a message naming both shapes (issue 11 §1.2):
/// a length-m target against an m × 1 output used to broadcast to an m × m loss.
/// </summary>
[Collection("Torch")]
public class TargetShapeTests
{
    private static (Tensor Output, Tensor Vector) RegressionCase()
    {
        var net = TestModels.Mlp(new[] { 3, 4, 1 }, seed: 3);
        var x = TestModels.Inputs(8, 3, seed: 4);
        manual_seed(5);
        var t = randn(8, dtype: ScalarType.Float64);
        return (net.call(x), t);
    }

    [Fact]
    public void Gaussian_LengthMTargetAgainstMx1Output_IsRefusedWithBothShapes()
    {
        using var scope = NewDisposeScope();
        var (r, t) = RegressionCase();
        var lik = new GaussianLikelihood();
        var e = Assert.Throws<TargetShapeException>(() => lik.Loss(r, t));
        Assert.Equal("Gaussian likelihood: target shape [8] does not match output shape [8, 1]; " +
                     "targets must have the output's shape (reshape it with target.reshape(8, 1))", e.Message);
        Assert.Throws<TargetShapeException>(() => lik.PerExampleLoss(r, t));

        // The right loss, ½ mean (r − t)², computed by hand, is what the well-shaped target gives.
        double expected = 0;
        for (int i = 0; i < 8; i++)
        {
            double d = r[i, 0].item<double>() - t[i].item<double>();
            expected += 0.5 * d * d / 8;
        }
        Assert.Equal(expected, lik.Loss(r, t.reshape(8, 1)).item<double>(), 14);
        // The broadcast value the unchecked code returned differs (8 × 8 differences): the check is what prevents it.
        double broadcast = (r - t).square().sum(1).mul(0.5).mean().item<double>();
        Assert.True(Math.Abs(broadcast - expected) > 0.1, $"broadcast {broadcast} vs {expected}");
    }

    [Fact]
    public void Gaussian_OtherMismatches_AreRefused()
    {
        using var scope = NewDisposeScope();
        var lik = new GaussianLikelihood();
        var r = zeros(8, 2, dtype: ScalarType.Float64);
        var e = Assert.Throws<TargetShapeException>(() => lik.Loss(r, zeros(8, 1, dtype: ScalarType.Float64)));
        Assert.Equal("Gaussian likelihood: target shape [8, 1] does not match output shape [8, 2]; targets must have the output's shape", e.Message);
        e = Assert.Throws<TargetShapeException>(() => lik.Loss(r, zeros(2, 8, dtype: ScalarType.Float64)));
        Assert.Equal("Gaussian likelihood: target shape [2, 8] does not match output shape [8, 2]; targets must have the output's shape", e.Message);
        e = Assert.Throws<TargetShapeException>(() => lik.Loss(zeros(8, dtype: ScalarType.Float64), zeros(8, dtype: ScalarType.Float64)));
        Assert.Equal("Gaussian likelihood: the output must be m × o (batch × outputs), got shape [8]", e.Message);
    }

    [Fact]
    public void Bernoulli_MismatchedTargets_AreRefusedInLossAndAccuracy()
    {
        using var scope = NewDisposeScope();
        var lik = new BernoulliLikelihood();
        var r = zeros(8, 1, dtype: ScalarType.Float64);
        var t = ones(8, dtype: ScalarType.Float64);
        const string message = "Bernoulli likelihood: target shape [8] does not match output shape [8, 1]; " +
                               "targets must have the output's shape (reshape it with target.reshape(8, 1))";
        Assert.Equal(message, Assert.Throws<TargetShapeException>(() => lik.Loss(r, t)).Message);
        Assert.Equal(message, Assert.Throws<TargetShapeException>(() => lik.Accuracy(r, t)).Message);
        // log 2 per output for r = 0, closed form.
        Assert.Equal(Math.Log(2), lik.Loss(r, t.reshape(8, 1)).item<double>(), 14);
    }

    [Fact]
    public void Categorical_RefusesOneHotFloatAndOutOfRangeTargets()
    {
        using var scope = NewDisposeScope();
        var lik = new CategoricalLikelihood();
        var r = zeros(8, 3, dtype: ScalarType.Float64);
        var e = Assert.Throws<TargetShapeException>(() => lik.Loss(r, zeros(8, 3, dtype: ScalarType.Float64)));
        Assert.Equal("Categorical likelihood: target shape [8, 3] does not fit output shape [8, 3]; " +
                     "targets must be 8 integer class indices in [0, 3) (shape [8], int64)", e.Message);
        e = Assert.Throws<TargetShapeException>(() => lik.Loss(r, zeros(8, dtype: ScalarType.Float64)));
        Assert.Equal("Categorical likelihood: target has element type Float64; " +
                     "targets must be 8 integer class indices in [0, 3) (shape [8], int64)", e.Message);
        e = Assert.Throws<TargetShapeException>(() => lik.Loss(r, zeros(7, dtype: ScalarType.Int64)));
        Assert.Equal("Categorical likelihood: target shape [7] does not fit output shape [8, 3]; " +
                     "targets must be 8 integer class indices in [0, 3) (shape [8], int64)", e.Message);
        e = Assert.Throws<TargetShapeException>(() => lik.PerExampleLoss(r, full(8, 3L, dtype: ScalarType.Int64)));
        Assert.StartsWith("Categorical likelihood: a class index is outside [0, 3) for output shape [8, 3] (", e.Message);
        Assert.EndsWith("); use labels 0 … 2 or a wider output layer", e.Message);
        Assert.DoesNotContain("\n", e.Message);
        // Uniform logits: −log(1/3) for every example, closed form.
        Assert.Equal(Math.Log(3), lik.Loss(r, zeros(8, dtype: ScalarType.Int64)).item<double>(), 14);
        Assert.Equal(Math.Log(3), lik.Loss(r, zeros(8, dtype: ScalarType.Int32)).item<double>(), 14);
    }

    [Theory]
    [InlineData(CurvatureStructure.Exact)]
    [InlineData(CurvatureStructure.Tengrad)]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.HessianFree)]
    public void NaturalGradientDescent_WrongTargets_FailBeforeAnyWeightMoves(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var net = TestModels.Mlp(new[] { 3, 4, 1 }, seed: 3);
        var x = TestModels.Inputs(8, 3, seed: 4);
        var before = net.parameters().Select(p => p.detach().clone()).ToList();
        using var ngd = new NaturalGradientDescent(net, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.5,
            Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-2 },
        });
        var e = Assert.Throws<TargetShapeException>(() => ngd.Step(x, zeros(8, dtype: ScalarType.Float64)));
        Assert.StartsWith("Gaussian likelihood: target shape [8] does not match output shape [8, 1]", e.Message);
        foreach (var (p, q) in net.parameters().Zip(before)) Assert.True(p.detach().eq(q).all().item<bool>());
    }
}
