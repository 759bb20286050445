using Microsoft.Extensions.Logging;
using NaturalGradient.Curvature;
using NaturalGradient.Damping;
using NaturalGradient.Diagnostics;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Observability;

[Collection("Torch")]
public class StepReportTests
{
    private static (nn.Module<Tensor, Tensor> Model, Tensor X, Tensor Y) Problem()
    {
        var model = TestModels.Mlp(new[] { 3, 5, 2 }, seed: 4);
        var x = TestModels.Inputs(32, 3, seed: 5);
        manual_seed(6);
        return (model, x, randn(32, 2, dtype: ScalarType.Float64));
    }

    private static NaturalGradientOptions Options(CurvatureStructure structure, DiagnosticsLevel level = DiagnosticsLevel.Basic,
        DampingSchedule schedule = DampingSchedule.Constant, double? klClip = null) => new()
    {
        LearningRate = 0.3,
        Diagnostics = level,
        DampingSchedule = schedule,
        KlClip = klClip,
        KlClipForm = KlClipForm.StepQuadraticForm,   // the report's predicted KL is the clipped step's
        Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-2 },
    };

    [Fact]
    public void HessianFree_Report_CarriesSolverIterationsResidualAndTimes_AndIsPublished()
    {
        var (model, x, y) = Problem();
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), Options(CurvatureStructure.HessianFree));
        var seen = new List<StepReport>();
        ngd.StepCompleted += (sender, r) => { Assert.Same(ngd, sender); seen.Add(r); };
        StepReport report = null!;
        for (int i = 0; i < 3; i++)
        {
            using var scope = NewDisposeScope();
            report = ngd.Step(x, y);
        }
        var hf = (NaturalGradient.Curvature.HessianFree.HessianFreeCurvature)ngd.Preconditioner.Curvature;
        Assert.Equal(hf.LastReport!.Iterations, report.SolverIterations);
        Assert.Equal(hf.LastReport.RelativeResidual, report.SolverRelativeResidual);
        Assert.Equal(hf.LastReport.Status, report.SolverStatus);
        Assert.True(report.SolverIterations > 0);
        Assert.Equal(3, report.Step);
        Assert.Equal(0, report.SkippedSteps);
        Assert.True(report.SolveTime > TimeSpan.Zero && report.CurvatureUpdateTime >= TimeSpan.Zero);
        Assert.Equal(report.CurvatureUpdateTime + report.SolveTime, report.CurvatureTime);
        Assert.Same(report, ngd.LastReport);
        Assert.Equal(new long[] { 1, 2, 3 }, seen.Select(r => r.Step));
        Assert.True(double.IsNaN(report.Rho));                 // constant damping, basic diagnostics: no extra forward pass
        Assert.Null(report.GradientNorm);
    }

    [Fact]
    public void DirectSolve_Report_HasNoSolverFields_AndClipScaleMatchesTheBound()
    {
        var (model, x, y) = Problem();
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), Options(CurvatureStructure.Kfac, klClip: 1e-6));
        using var scope = NewDisposeScope();
        var r = ngd.Step(x, y);
        Assert.Null(r.SolverIterations);
        Assert.Null(r.SolverStatus);
        Assert.InRange(r.KlClipScale, 0, 1 - 1e-9);            // the bound is tiny: the step was scaled down …
        Assert.Equal(1e-6, r.PredictedKl, 1e-12);               // … to predicted KL = κ
    }

    [Fact]
    public void Detailed_Report_NormsEqualDirectComputation_AndRhoUnderConstantDamping()
    {
        var (model, x, y) = Problem();
        var lik = new GaussianLikelihood();
        model.zero_grad();
        lik.Loss(model.call(x), y).backward();
        double gradNorm = Math.Sqrt(model.parameters().Sum(p => p.grad!.square().sum().item<double>()));
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        model.zero_grad();

        using var ngd = new NaturalGradientDescent(model, lik, Options(CurvatureStructure.BlockDiagonal, DiagnosticsLevel.Detailed));
        using var scope = NewDisposeScope();
        var r = ngd.Step(x, y);
        double updateNorm = Math.Sqrt(model.parameters().Zip(before).Sum(p => (p.First.detach() - p.Second).square().sum().item<double>()));
        Assert.Equal(gradNorm, r.GradientNorm!.Value, 1e-10);
        Assert.Equal(updateNorm, r.UpdateNorm!.Value, 1e-10);
        Assert.True(double.IsFinite(r.Rho) && r.Rho > 0, $"rho = {r.Rho}");
        Assert.Equal(1e-2, ngd.Damping);                        // ρ computed for the report only: constant λ stays
    }

    [Fact]
    public void Logger_GetsOneDebugEventPerStep_AndAWarningForASkippedStep()
    {
        var (model, x, y) = Problem();
        var logger = new ListLogger();
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), Options(CurvatureStructure.Diagonal), logger);
        using (NewDisposeScope()) ngd.Step(x, y);
        var bad = x.clone();
        bad[0, 0] = tensor(double.NaN);
        StepReport skipped;
        using (NewDisposeScope()) skipped = ngd.Step(bad, y);

        Assert.False(skipped.Applied);
        Assert.Equal(1, skipped.SkippedSteps);
        Assert.Equal(1, ngd.SkippedSteps);
        Assert.Equal(new[] { (LogLevel.Debug, 1), (LogLevel.Warning, 2) }, logger.Entries.Select(e => (e.Level, e.Id)));
        Assert.StartsWith("step 1: loss ", logger.Entries[0].Message);
        Assert.Equal("step 2 skipped: the natural-gradient direction was not finite at damping 0.01 (1 skipped so far)", logger.Entries[1].Message);
        Assert.True(model.parameters().All(p => p.isfinite().all().item<bool>()));
    }

    [Fact]
    public void Logger_AtInformation_FormatsNothingForSteps()
    {
        var (model, x, y) = Problem();
        var logger = new ListLogger { Minimum = LogLevel.Information };
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), Options(CurvatureStructure.Tengrad), logger);
        for (int i = 0; i < 2; i++)
            using (NewDisposeScope()) ngd.Step(x, y);
        Assert.Empty(logger.Entries);
        Assert.Equal(0, logger.Formatted);
    }

    private sealed class ListLogger : ILogger
    {
        public LogLevel Minimum { get; init; } = LogLevel.Trace;
        public List<(LogLevel Level, int Id, string Message)> Entries { get; } = new();
        public int Formatted { get; private set; }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel >= Minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            Formatted++;
            Entries.Add((logLevel, eventId.Id, formatter(state, exception)));
        }
    }
}
