using NaturalGradient.Curvature.Ksd;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Methods;

/// <summary>Krylov subspace descent (Vinyals &amp; Povey 2012) against the explicit subspace minimiser of a quadratic.</summary>
[Collection("Torch")]
public class KsdTests
{
    /// <summary>Flat gradient and dense Hessian of the mean loss by one double-backward per coordinate (no library code).</summary>
    private static (Tensor Gradient, Tensor Hessian) Derivatives(Module<Tensor, Tensor> model, ILikelihood likelihood, Tensor x, Tensor y)
    {
        var ps = model.parameters().ToArray();
        var loss = likelihood.Loss(model.call(x), y);
        var grads = autograd.grad(new[] { loss }, ps, retain_graph: true, create_graph: true);
        var g = cat(grads.Select(t => t.flatten()).ToArray());
        long p = g.shape[0];
        var rows = new List<Tensor>();
        for (long i = 0; i < p; i++)
            rows.Add(cat(autograd.grad(new[] { g[i] }, ps, retain_graph: true).Select(t => t.flatten()).ToArray()));
        return (g.detach(), stack(rows.ToArray()).detach());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Step_OnAQuadratic_EqualsTheExplicitSubspaceMinimiser(int k)
    {
        using var _ = NewDisposeScope();
        const double lambda = 0.05;
        manual_seed(11);
        var model = Linear(4, 3, dtype: ScalarType.Float64);
        var likelihood = new GaussianLikelihood();   // ½‖r − y‖²: the loss is quadratic in (W, b), its GGN is its Hessian
        var x1 = randn(12, 4, dtype: ScalarType.Float64); var y1 = randn(12, 3, dtype: ScalarType.Float64);
        var x2 = randn(9, 4, dtype: ScalarType.Float64);  var y2 = randn(9, 3, dtype: ScalarType.Float64);
        var theta0 = cat(model.parameters().Select(t => t.detach().flatten().clone()).ToArray());

        var (g1, h1) = Derivatives(model, likelihood, x1, y1);
        var (g2, h2) = Derivatives(model, likelihood, x2, y2);
        var damped = h1 + lambda * eye(h1.shape[0], dtype: ScalarType.Float64);
        var columns = new List<Tensor> { g1 };
        for (int j = 1; j < k; j++) columns.Add(damped.mv(columns[^1]));
        var (q, _) = linalg.qr(stack(columns.ToArray(), 1));                 // p × k, the same span as KSD's basis
        var alpha = linalg.solve(q.t().mm(h2).mm(q), -q.t().mv(g2));          // argmin of the quadratic φ on batch 2
        var expected = theta0 + q.mv(alpha);

        using var ksd = new KrylovSubspaceDescent(model, likelihood,
            new KsdOptions { Dimension = k, Damping = lambda, SubspaceIterations = 60, SubspaceTolerance = 1e-13 });
        var report = ksd.Step(x1, y1, x2, y2);
        Assert.True(report.Applied);
        Assert.Equal(k, report.BasisSize);
        var actual = cat(model.parameters().Select(t => t.detach().flatten()).ToArray());
        TensorAssert.Close(expected, actual, rtol: 1e-8, label: $"KSD step, k = {k}");
        Assert.True(report.SubspaceLoss < report.SubspaceLossBefore);
    }

    [Fact]
    public void SecondStep_AddsThePreviousDirection_AndStillMinimisesInTheLargerSubspace()
    {
        using var _ = NewDisposeScope();
        manual_seed(12);
        var model = Linear(3, 2, dtype: ScalarType.Float64);
        var likelihood = new GaussianLikelihood();
        var x = randn(10, 3, dtype: ScalarType.Float64); var y = randn(10, 2, dtype: ScalarType.Float64);
        using var ksd = new KrylovSubspaceDescent(model, likelihood, new KsdOptions { Dimension = 2, Damping = 0.1, SubspaceIterations = 40, SubspaceTolerance = 1e-12 });
        var first = ksd.Step(x, y);
        var second = ksd.Step(x, y);
        Assert.Equal(2, first.BasisSize);
        Assert.Equal(3, second.BasisSize);
        Assert.True(second.SubspaceLoss <= first.SubspaceLoss + 1e-12);
    }

    [Fact]
    public void Trainer_Ksd_LowersTheLoss()
    {
        using var data = TinyData.Classification();
        var result = new NaturalGradient.Training.Trainer(new NaturalGradient.Training.Models.ModelSpec { Hidden = new[] { 8 } },
            new NaturalGradient.Training.OptimizerSettings { Name = "ksd", Damping = 1e-1 },
            new NaturalGradient.Training.TrainerOptions { Epochs = 2, BatchSize = 16, Seed = 3, Dtype = ScalarType.Float32 }).Run(data);
        Assert.True(result.Final.TrainLoss < 0.5 * result.Epochs[0].TrainLoss, $"{result.Epochs[0].TrainLoss} → {result.Final.TrainLoss}");
        Assert.All(result.Steps, s => Assert.True(s.SolverIterations >= 1));
    }
}
