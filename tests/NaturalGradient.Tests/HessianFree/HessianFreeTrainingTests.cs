using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Damping;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.HessianFree;

/// <summary>Hessian-free natural gradient inside a training loop: memory and progress.</summary>
[Collection("Torch")]
public class HessianFreeTrainingTests
{
    private static (nn.Module<Tensor, Tensor> Model, Tensor X, Tensor Y, NaturalGradientPreconditioner Pre, optim.Optimizer Sgd) Setup(SolverKind solver)
    {
        var model = TestModels.Mlp(new[] { 4, 8, 3 }, seed: 2);
        var x = TestModels.Inputs(16, 4, seed: 3);
        manual_seed(4);
        var y = randint(0, 3, new long[] { 16 });
        var pre = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(), new PreconditionerOptions
        {
            Structure = CurvatureStructure.HessianFree, Damping = 1e-2, HessianFree = new HessianFreeOptions { Solver = solver },
        });
        return (model, x, y, pre, optim.SGD(model.parameters(), 0.5));
    }

    private static double Step(nn.Module<Tensor, Tensor> model, Tensor x, Tensor y, NaturalGradientPreconditioner pre, optim.Optimizer sgd)
    {
        using var step = NewDisposeScope();
        sgd.zero_grad();
        var loss = pre.Backward(model.call(x), y).item<double>();
        Assert.True(pre.Precondition().Applied);
        sgd.step();
        return loss;
    }

    [Theory]
    [InlineData(SolverKind.Cg)]
    [InlineData(SolverKind.Minres)]
    public void RepeatedSteps_KeepTheLiveTensorCountFlat(SolverKind solver)
    {
        var (model, x, y, pre, sgd) = Setup(solver);
        using var _ = pre;
        long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Step(model, x, y, pre, sgd);
        Step(model, x, y, pre, sgd);
        long before = Live();
        for (int i = 0; i < 6; i++) Step(model, x, y, pre, sgd);
        Assert.Equal(before, Live());
        Assert.True(((HessianFreeCurvature)pre.Curvature).TotalProducts > 0);
    }

    [Theory]
    [InlineData(SolverKind.Cg)]
    [InlineData(SolverKind.Minres)]
    public void NaturalGradientSteps_ReduceTheLoss(SolverKind solver)
    {
        var (model, x, y, pre, sgd) = Setup(solver);
        using var _ = pre;
        double first = Step(model, x, y, pre, sgd);
        double last = first;
        for (int i = 0; i < 9; i++) last = Step(model, x, y, pre, sgd);
        Assert.True(last < 0.5 * first, $"loss {first:F4} → {last:F4}");
    }

    [Fact]
    public void NaturalGradientDescent_WithLevenbergMarquardtAndKlClip_UsesTheGgnProductBeforeTheWeightsMove()
    {
        // The optimiser calls Curvature.Multiply (predicted KL, ρ's quadratic model) while the step's graph is alive.
        var model = TestModels.Mlp(new[] { 4, 8, 2 }, seed: 5);
        var x = TestModels.Inputs(32, 4, seed: 6);
        manual_seed(7);
        var y = randn(32, 2, dtype: ScalarType.Float64);
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.HessianFree, Damping = 1e-1 },
            LearningRate = 1.0, DampingSchedule = DampingSchedule.LevenbergMarquardt, KlClip = 1.0,
        });
        var losses = new List<double>();
        for (int i = 0; i < 8; i++)
        {
            using var step = NewDisposeScope();
            losses.Add(ngd.Step(x, y).Loss);
        }
        Assert.True(losses[^1] < 0.5 * losses[0], $"loss {losses[0]:F4} → {losses[^1]:F4}");
        Assert.Equal(SolveStatus.Converged, ((HessianFreeCurvature)ngd.Preconditioner.Curvature).LastReport!.Status);
    }
}
