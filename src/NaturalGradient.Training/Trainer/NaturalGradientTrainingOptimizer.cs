using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Solvers;
using NaturalGradient.Fisher;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training;

/// <summary>
/// Adapts <see cref="NaturalGradientDescent"/> to the trainer: maps <see cref="OptimizerSettings"/> onto the
/// natural-gradient options for one <see cref="CurvatureStructure"/>, and draws the metric's batch as
/// <see cref="OptimizerSettings.MetricSource"/> says (seed 001 §5: same batch, another batch, or the batch plus
/// unlabeled inputs).
/// </summary>
public sealed class NaturalGradientTrainingOptimizer : ITrainingOptimizer
{
    private readonly NaturalGradientDescent _ngd;
    private readonly OptimizerContext _context;
    private Tensor? _probeX, _probeY;
    private long _steps;

    public NaturalGradientTrainingOptimizer(string name, CurvatureStructure structure, OptimizerContext context)
    {
        var s = context.Settings;
        if (s.MetricSource == MetricSource.Unlabeled && s.Fisher == FisherKind.Empirical)
            throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.MetricSource), s.MetricSource,
                "a metric on unlabeled inputs needs the Monte-Carlo or exact Fisher (--fisher mc or exact), not the empirical one");
        if (s.MetricSource != MetricSource.SameBatch && context.MetricBatches is null)
            throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.MetricSource), s.MetricSource,
                "this run offers no metric batches; use the same batch");
        if (context.DataParallel is not null)
        {
            if (structure == CurvatureStructure.HessianFree)
                throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.Name), name, "Hessian-free natural gradient does not run data-parallel yet (its Gauss-Newton products need the whole batch's graph); use kfac, ekfac, tengrad, block, diag or exact");
            if (s.MetricSource != MetricSource.SameBatch)
                throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.MetricSource), s.MetricSource, "data-parallel training takes the metric from the same batch");
            if (s.DampingSchedule == Damping.DampingSchedule.LevenbergMarquardt)
                throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.DampingSchedule), s.DampingSchedule, "Levenberg-Marquardt damping does not run data-parallel yet (its reduction ratio needs the global batch's loss after the step); use a constant or decaying damping");
        }
        Name = name;
        _context = context;
        _ngd = new NaturalGradientDescent(context.Model, context.Likelihood, new NaturalGradientOptions
        {
            LearningRate = s.LearningRate,
            Momentum = s.Momentum,
            WeightDecay = s.WeightDecay,
            DampingSchedule = s.DampingSchedule,
            KlClip = s.KlClip,
            KlClipForm = s.KlClipForm,
            ReportPredictedKl = s.ReportPredictedKl,
            Preconditioner = new PreconditionerOptions
            {
                Structure = structure,
                // Hessian-free without a solver preconditioner uses no statistics: take the free ones (the loss's own gradients).
                Fisher = structure == CurvatureStructure.HessianFree && !s.HfDiagonalPreconditioner && !s.HfKfacPreconditioner ? FisherKind.Empirical : s.Fisher,
                MonteCarloSamples = s.McSamples,
                Form = s.MetricForm,
                Damping = s.Damping,
                MaxExactParameters = s.MaxExactParameters,
                Seed = (long)(context.Generator.initial_seed() & long.MaxValue),
                HessianFree = new HessianFreeOptions
                {
                    Solver = s.HfSolver switch { HfSolver.Minres => SolverKind.Minres, HfSolver.MinresQlp => SolverKind.MinresQlp, _ => SolverKind.Cg },
                    MaxIterations = s.HfMaxIterations,
                    RelativeTolerance = s.HfTolerance,
                    DiagonalPreconditioner = s.HfDiagonalPreconditioner,
                    ReferenceSolveEvery = s.DiagnosticsEvery,
                    KfacPreconditioner = s.HfKfacPreconditioner,
                    KfacPreconditionerOptions = new KfacOptions
                    {
                        FactorDecay = s.FactorDecay, FactorUpdatePeriod = s.FactorUpdatePeriod, InverseUpdatePeriod = s.InverseUpdatePeriod,
                        InverseMethod = s.KfacInverse, DampingMode = s.KfacDamping, FactorPrecision = s.KfacFactorPrecision, InversePrecision = s.KfacInversePrecision,
                    },
                },
                Kbfgs = new NaturalGradient.Curvature.Kbfgs.KbfgsOptions { Memory = s.KbfgsMemory },
                Kfac = new KfacOptions
                {
                    FactorDecay = s.FactorDecay,
                    FactorUpdatePeriod = s.FactorUpdatePeriod,
                    InverseUpdatePeriod = s.InverseUpdatePeriod,
                    InverseMethod = s.KfacInverse,
                    DampingMode = s.KfacDamping,
                    FactorPrecision = s.KfacFactorPrecision, InversePrecision = s.KfacInversePrecision,
                },
            },
        });
        _ngd.Preconditioner.Reducer = context.DataParallel;
        if (context.DataParallel is { } parallel && structure is CurvatureStructure.Kfac or CurvatureStructure.Ekfac
            && s.KfacDistribution != KfacDistribution.Replicated)
            _ngd.Preconditioner.Distribute(local => new DistributedKroneckerCurvature((BlockDiagonalCurvature)local, parallel, s.KfacDistribution, s.FactorSyncPeriod));
        if (structure == CurvatureStructure.BlockDiagonal) RefuseLargeBlocks(s.MaxExactParameters);
    }

    /// <summary>A dense block per layer holds p² numbers: refuse layers beyond the dense limit before any step.</summary>
    private void RefuseLargeBlocks(long limit)
    {
        var largest = _ngd.Preconditioner.Capture.Layers.MaxBy(l => l.Adapter.ParameterCount)!;
        long p = largest.Adapter.ParameterCount;
        if (p <= limit) return;
        _ngd.Dispose();
        throw new ModelNotSupportedException(
            $"block NGD needs a dense {p}×{p} Fisher block for layer '{largest.Name}' ({p} parameters > the limit of {limit}); " +
            "use tengrad, kfac or hf, or raise the limit (--max-exact-params / MaxExactParameters)");
    }

    public string Name { get; }
    public double LearningRate => _ngd.LearningRate;
    public NaturalGradientDescent Optimizer => _ngd;

    public void SetLearningRate(double learningRate)
    {
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "learning rate must be > 0");
        _ngd.LearningRate = learningRate;
    }

    public StepResult Step(Tensor x, Tensor y)
    {
        Tensor? metricX = null, metricY = null;
        switch (_context.Settings.MetricSource)
        {
            case MetricSource.OtherBatch:
                (metricX, metricY) = _context.MetricBatches!.Next(checked((int)x.shape[0]));
                break;
            case MetricSource.Unlabeled:
                var extra = _context.MetricBatches!.Next(_context.Settings.UnlabeledCount).X;
                metricX = cat(new[] { x, extra });
                break;
        }
        var r = _ngd.Step(x, y, metricX, metricY);
        double loss = _context.DataParallel?.ReduceLoss(r.Loss) ?? r.Loss;
        return new StepResult(loss, r.Damping, double.IsNaN(r.Rho) ? null : r.Rho,
            double.IsNaN(r.PredictedKl) ? null : r.PredictedKl, r.SolverIterations, Skipped: !r.Applied,
            CurvatureMs: r.CurvatureTime.TotalMilliseconds)
        {
            Approximation = Diagnose(x, y, r.Damping), SolverIterationsUnpreconditioned = r.SolverIterationsUnpreconditioned,
        };
    }

    /// <inheritdoc/>
    public void ExportState(string prefix, NaturalGradientStateDict state) => _ngd.ExportState(prefix, state);

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state) => _ngd.ImportState(prefix, state);

    /// <summary>
    /// On steps 1, 1 + N, 1 + 2N, … (N = <see cref="OptimizerSettings.DiagnosticsEvery"/>): the live curvature's per-layer
    /// diagnostics on the probe batch, which is the run's first batch (kept, so every measurement sees the same data).
    /// </summary>
    private IReadOnlyList<NaturalGradient.Diagnostics.LayerApproximation>? Diagnose(Tensor x, Tensor y, double damping)
    {
        int every = _context.Settings.DiagnosticsEvery;
        if (every <= 0 || (_steps++ % every) != 0) return null;
        if (NaturalGradient.Diagnostics.ApproximationDiagnostics.Blocks(_ngd.Preconditioner.Curvature) is null) return null;
        _probeX ??= x.detach().clone().DetachFromDisposeScope();
        _probeY ??= y.detach().clone().DetachFromDisposeScope();
        return NaturalGradient.Diagnostics.ApproximationProbe.Run(_ngd.Preconditioner, _context.Model, _probeX, _probeY, damping,
            fresh: false, seed: _steps);
    }

    public void Dispose()
    {
        _ngd.Dispose();
        _probeX?.Dispose();
        _probeY?.Dispose();
    }
}
