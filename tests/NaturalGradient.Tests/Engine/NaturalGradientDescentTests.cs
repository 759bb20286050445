using NaturalGradient.Curvature;
using NaturalGradient.Damping;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Engine;

[Collection("Torch")]
public class NaturalGradientDescentTests
{
    /// <summary>A fixed regression problem: a teacher MLP's outputs as targets.</summary>
    private static (Tensor x, Tensor y) Teacher(int m = 64)
    {
        var teacher = TestModels.Mlp(new[] { 4, 8, 1 }, seed: 100);
        var x = TestModels.Inputs(m, 4, seed: 101);
        using var _ = no_grad();
        return (x, teacher.call(x).detach());
    }

    private static double TrainSgd(double lr, int steps, Tensor x, Tensor y)
    {
        var model = TestModels.Mlp(new[] { 4, 8, 1 }, seed: 1);
        var opt = optim.SGD(model.parameters(), lr);
        var lik = new GaussianLikelihood();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            lik.Loss(model.call(x), y).backward();
            opt.step();
        }
        using var __ = no_grad();
        return lik.Loss(model.call(x), y).item<double>();
    }

    private static double TrainNgd(CurvatureStructure structure, int steps, Tensor x, Tensor y, DampingSchedule schedule = DampingSchedule.Constant)
    {
        var model = TestModels.Mlp(new[] { 4, 8, 1 }, seed: 1);
        var lik = new GaussianLikelihood();
        using var ngd = new NaturalGradientDescent(model, lik, new NaturalGradientOptions
        {
            LearningRate = 0.5,
            DampingSchedule = schedule,
            // Full-batch steps: K-FAC's running averages and cached inverses would only lag behind the current curvature.
            Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-3, Kfac = new() { FactorDecay = 0, InverseUpdatePeriod = 1 } },
        });
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            Assert.True(ngd.Step(x, y).Applied);
        }
        using var __ = no_grad();
        return lik.Loss(model.call(x), y).item<double>();
    }

    [Theory]
    [InlineData(CurvatureStructure.Exact)]
    [InlineData(CurvatureStructure.BlockDiagonal)]
    [InlineData(CurvatureStructure.Tengrad)]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Ekfac)]
    public void Ngd_ReachesALowerLossThanTheBestSgdInTheSameSteps(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var (x, y) = Teacher();
        const int steps = 40;
        double sgd = new[] { 0.03, 0.1, 0.3, 1.0 }.Select(lr => TrainSgd(lr, steps, x, y)).Where(double.IsFinite).Min();
        double ngd = TrainNgd(structure, steps, x, y);
        Assert.True(ngd < sgd, $"{structure}: NGD {ngd:E3} vs best SGD {sgd:E3} after {steps} steps");
    }

    [Fact]
    public void DiagonalNgd_DecreasesTheLoss()
    {
        using var scope = NewDisposeScope();
        var (x, y) = Teacher();
        double start = TrainNgd(CurvatureStructure.Diagonal, 0, x, y);
        double end = TrainNgd(CurvatureStructure.Diagonal, 40, x, y);
        Assert.True(end < start * 0.5, $"loss {start:E3} → {end:E3}");
    }

    [Fact]
    public void Ngd_WithLevenbergMarquardt_Converges()
    {
        using var scope = NewDisposeScope();
        var (x, y) = Teacher();
        double start = TrainNgd(CurvatureStructure.BlockDiagonal, 0, x, y);
        double end = TrainNgd(CurvatureStructure.BlockDiagonal, 30, x, y, DampingSchedule.LevenbergMarquardt);
        Assert.True(end < start * 0.05, $"loss {start:E3} → {end:E3}");
    }

    [Fact]
    public void Ngd_SameSeed_SameResult()
    {
        using var scope = NewDisposeScope();
        var (x, y) = Teacher();
        var a = TrainNgdMc(x, y);
        var b = TrainNgdMc(x, y);
        Assert.Equal(a, b);
    }

    private static double TrainNgdMc(Tensor x, Tensor y)
    {
        var model = TestModels.Mlp(new[] { 4, 8, 1 }, seed: 1);
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.3,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.MonteCarlo, Seed = 5, Damping = 1e-2 },
        });
        double loss = 0;
        for (int s = 0; s < 10; s++)
        {
            using var scope = NewDisposeScope();
            loss = ngd.Step(x, y).Loss;
        }
        return loss;
    }

    [Fact]
    public void Ngd_LiveTensorCount_StaysFlatOverManySteps()
    {
        var (x, y) = Teacher();
        var model = TestModels.Mlp(new[] { 4, 8, 1 }, seed: 1);
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, Momentum = 0.9, WeightDecay = 1e-4, KlClip = 1e-2,
            DampingSchedule = DampingSchedule.LevenbergMarquardt,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Damping = 1e-2 },
        });
        void Run(int steps)
        {
            for (int s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                ngd.Step(x, y);
            }
        }
        Run(5);
        long after5 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Run(200);
        long after205 = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Assert.Equal(after5, after205);
    }

    [Fact]
    public void KlClip_StepForm_BoundsThePredictedKlOfEveryStep()
    {
        using var scope = NewDisposeScope();
        var (x, y) = Teacher();
        var model = TestModels.Mlp(new[] { 4, 8, 1 }, seed: 1);
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 1.0, KlClip = 1e-4, KlClipForm = KlClipForm.StepQuadraticForm,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.BlockDiagonal, Damping = 1e-3 },
        });
        var reports = Enumerable.Range(0, 5).Select(_ => ngd.Step(x, y)).ToList();
        Assert.All(reports, r => Assert.True(r.PredictedKl <= 1e-4 * (1 + 1e-9), $"predicted KL {r.PredictedKl}"));
        Assert.Contains(reports, r => r.PredictedKl > 0.9e-4);
    }

    /// <summary>
    /// <see cref="KlClipForm.PreconditionedGradient"/>: the applied step is −η ν Δ with ν = min(1, √(κ / (η² Δᵀg))),
    /// Δ = (M + λI)⁻¹g from the same statistics (computed here by a separate preconditioner on the same model and batch),
    /// and no metric product is spent on a predicted KL (the report's is NaN).
    /// </summary>
    [Theory]
    [InlineData(1e-4)]
    [InlineData(1e6)]
    public void KlClip_PreconditionedGradientForm_ScalesDeltaByNu(double kappa)
    {
        using var scope = NewDisposeScope();
        var (x, y) = Teacher();
        var model = TestModels.Mlp(new[] { 4, 8, 1 }, seed: 1);
        const double eta = 0.5, lambda = 1e-3;
        var pre = new PreconditionerOptions { Structure = CurvatureStructure.BlockDiagonal, Damping = lambda };

        // Reference Δ and ν from an independent preconditioner on the same weights and batch.
        using var reference = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), pre);
        model.zero_grad();
        reference.Backward(model.call(x), y);
        var g = reference.GradientMatrices().Select(t => t.detach().clone()).ToList();
        var delta = reference.Solve(g, lambda);
        double vg = eta * eta * g.Zip(delta, (a, b) => (a * b).sum().item<double>()).Sum();
        double nu = Math.Min(1, Math.Sqrt(kappa / vg));
        var before = reference.Layers.Select(l => l.WeightMatrix().detach().clone()).ToList();
        var layers = reference.Layers;
        reference.Dispose();

        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = eta, KlClip = kappa, KlClipForm = KlClipForm.PreconditionedGradient, Preconditioner = pre,
        });
        var report = ngd.Step(x, y);
        Assert.Equal(nu, report.KlClipScale, 12);
        Assert.True(double.IsNaN(report.PredictedKl), $"predicted KL {report.PredictedKl} was computed");
        for (int l = 0; l < layers.Count; l++)
            TensorAssert.Close(before[l] - eta * nu * delta[l], layers[l].WeightMatrix(), rtol: 1e-10, label: $"layer {l}");
        if (kappa < 1) Assert.True(nu < 1, $"ν = {nu}: the clip did not bind");
    }
}
