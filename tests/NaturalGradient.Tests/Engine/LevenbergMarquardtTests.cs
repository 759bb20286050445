using NaturalGradient.Curvature;
using NaturalGradient.Damping;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Engine;

[Collection("Torch")]
public class LevenbergMarquardtTests
{
    [Fact]
    public void Policy_FollowsTheReductionRatio()
    {
        var lm = new LevenbergMarquardtDamping(1.0, minimum: 0.5, maximum: 2.0);
        lm.Observe(0.9); Assert.Equal(2.0 / 3.0, lm.Current, 12);
        lm.Observe(0.5); Assert.Equal(2.0 / 3.0, lm.Current, 12);
        lm.Observe(-1); Assert.Equal(1.0, lm.Current, 12);
        lm.Observe(double.NaN); Assert.Equal(1.5, lm.Current, 12);
        lm.Observe(0.1); Assert.Equal(2.0, lm.Current, 12);     // ceiling
        for (int i = 0; i < 10; i++) lm.Observe(1.0);
        Assert.Equal(0.5, lm.Current, 12);                       // floor
    }

    [Fact]
    public void Policy_RejectsInvalidSettings()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new LevenbergMarquardtDamping(-1));
        Assert.Equal("initial", ex.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new LevenbergMarquardtDamping(1, decrease: 1.5));
    }

    private static (NaturalGradientDescent ngd, nn.Module<Tensor, Tensor> model, Tensor x, Tensor y) Problem(double damping, double lr, int[] sizes)
    {
        var model = TestModels.Mlp(sizes, "tanh");
        var x = TestModels.Inputs(32, sizes[0]);
        manual_seed(9);
        var y = randn(32, sizes[^1], dtype: ScalarType.Float64);
        var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = lr,
            DampingSchedule = DampingSchedule.LevenbergMarquardt,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Exact, Damping = damping },
        });
        return (ngd, model, x, y);
    }

    [Fact]
    public void TooSmallDamping_StepRaisesTheLoss_AndDampingIncreases()
    {
        using var scope = NewDisposeScope();
        // Tiny λ with an over-parameterised net and a large step: the quadratic model over-promises.
        var (ngd, model, x, y) = Problem(damping: 1e-8, lr: 1.0, sizes: new[] { 4, 16, 2 });
        var report = ngd.Step(x, y);
        double after;
        using (no_grad()) after = ngd.Preconditioner.Likelihood.Loss(model.call(x), y).item<double>();
        Assert.True(after > report.Loss, $"expected the step to raise the loss: {report.Loss} → {after}");
        Assert.True(report.Rho < 0.25, $"ρ = {report.Rho}");
        Assert.True(report.Rho > -1e6 && !double.IsNaN(report.Rho), "the quadratic model predicted a decrease, so ρ is defined");
        Assert.True(ngd.Damping > 1e-8, $"damping should increase, is {ngd.Damping}");
    }

    [Fact]
    public void GoodQuadraticRegion_DampingDecreases()
    {
        using var scope = NewDisposeScope();
        // A linear model with Gaussian likelihood: the loss is exactly quadratic and M is its Hessian.
        var (ngd, _, x, y) = Problem(damping: 1e-1, lr: 1.0, sizes: new[] { 4, 2 });
        var report = ngd.Step(x, y);
        Assert.InRange(report.Rho, 0.75, 1.0 + 1e-9);
        Assert.True(ngd.Damping < 1e-1, $"damping should decrease, is {ngd.Damping}");
    }
}
