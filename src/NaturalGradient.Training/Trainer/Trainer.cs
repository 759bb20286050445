using System.Diagnostics;
using NaturalGradient.Training.Data;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Training;

/// <summary>
/// Trains a model built from a <see cref="ModelSpec"/> on a <see cref="Dataset"/> with a method from the
/// <see cref="OptimizerCatalog"/>: seeded epochs of mini-batches, one dispose scope per step, per-step metrics,
/// and a full-set evaluation before training and after every epoch.
/// </summary>
/// <remarks>
/// The loss is the likelihood's mean NLL: Gaussian ½‖r − t‖² for regression, categorical cross-entropy for
/// classification. A non-finite loss stops the run with <see cref="TrainingDivergedException"/>.
/// </remarks>
public sealed class Trainer
{
    private readonly ModelSpec _model;
    private readonly OptimizerSettings _settings;
    private readonly TrainerOptions _options;
    private readonly OptimizerCatalog _catalog;

    /// <param name="model">The network to build (input/output sizes come from the data).</param>
    /// <param name="settings">The method and its hyper-parameters.</param>
    /// <param name="options">Epochs, batch size, seed, dtype, threads.</param>
    /// <param name="catalog">Where methods are looked up; <see cref="OptimizerCatalog.Default"/> if null.</param>
    /// <exception cref="ArgumentOutOfRangeException">An invalid setting (validated here, before any tensor work).</exception>
    public Trainer(ModelSpec model, OptimizerSettings settings, TrainerOptions options, OptimizerCatalog? catalog = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _catalog = catalog ?? OptimizerCatalog.Default;
        _model.Validate();
        _settings.Validate();
        _options.Validate();
        if (!_catalog.Contains(_settings.Name)) _catalog.Describe(_settings.Name); // throws, listing the known names
    }

    /// <summary>Runs the training.</summary>
    /// <param name="data">Train/test split; not modified or disposed (a copy in the run's dtype is made).</param>
    /// <param name="progress">Optional observer of steps and epochs.</param>
    /// <param name="cancellation">Checked between steps.</param>
    /// <exception cref="ArgumentOutOfRangeException">The model kind does not fit the data's input shape.</exception>
    /// <exception cref="TrainingDivergedException">A loss became NaN or infinite.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellation"/> was triggered.</exception>
    public TrainingResult Run(Dataset data, ITrainingProgress? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        _model.ValidateFor(data.InputShape);
        if (_options.Threads is { } threads) set_num_threads(threads);

        using var ds = data.To(_options.Dtype);
        manual_seed(_options.Seed);
        using var model = ModelFactory.Build(_model, ds.InputShape, ds.OutputCount, _options.Dtype);
        ILikelihood likelihood = ds.Task == TaskKind.Classification ? new CategoricalLikelihood() : new GaussianLikelihood();
        var batches = new BatchIterator(ds.TrainX, ds.TrainY, _options.BatchSize, unchecked((long)SeedSequence.Derive(_options.Seed, SeedSequence.BatchOrder)));
        using var generator = new Generator(SeedSequence.Derive(_options.Seed, SeedSequence.Optimizer));
        using var sampler = new MetricBatchSampler(ds.TrainX, ds.TrainY, _options.BatchSize, SeedSequence.Derive(_options.Seed, SeedSequence.MetricBatches));
        var plan = new TrainingPlan(_settings.Name.Trim().ToLowerInvariant(), ds.Task, _options.Epochs, batches.BatchesPerEpoch,
            batches.BatchesPerEpoch * _options.Epochs, ModelFactory.ParameterCount(model), ds.TrainCount, ds.TestCount,
            get_num_threads(), _options.Dtype);
        using var optimizer = _catalog.Create(new OptimizerContext
        {
            Model = model, Likelihood = likelihood, Settings = _settings, Generator = generator,
            StepsPerEpoch = plan.StepsPerEpoch, TotalSteps = plan.TotalSteps, BatchSize = _options.BatchSize, MetricBatches = sampler,
            Log = progress is null ? null : progress.OnNote,
        });

        var run = new RunState(plan, progress);
        progress?.OnStart(plan);
        run.Clock.Start();
        Evaluate(run, model, likelihood, ds, epoch: 0, _settings.LearningRate);
        for (int epoch = 1; epoch <= _options.Epochs; epoch++)
        {
            double lr = _settings.LearningRate * _settings.LrDecay.Factor(epoch - 1);
            optimizer.SetLearningRate(lr);
            model.train();
            foreach (var (bx, by) in batches.Epoch())
            {
                cancellation.ThrowIfCancellationRequested();
                TakeStep(run, optimizer, bx, by, epoch);
            }
            Evaluate(run, model, likelihood, ds, epoch, lr);
            MemoryProbe.TrimNativeHeap();
        }
        return run.Result();
    }

    private void TakeStep(RunState run, ITrainingOptimizer optimizer, Tensor bx, Tensor by, int epoch)
    {
        long step = run.Steps.Count + 1;
        StepResult result;
        var watch = Stopwatch.StartNew();
        using (var scope = NewDisposeScope())
        {
            scope.Attach(bx, by); // the batch was made outside this scope (by the iterator): free it with the step
            result = optimizer.Step(bx, by);
        }
        watch.Stop();
        // Each step leaves a few kB of disposed tensor wrappers on the managed heap; left to the default gen-0
        // budget they add tens of MB of RSS before the first collection (docs/MEMORY.md). A gen-0 collection
        // every 50 steps (~0.1 ms) keeps resident memory flat; the step timing above excludes it.
        if (step % 50 == 0) GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        double? rss = null;
        if (step == 1 || step == 100 || step == run.Plan.TotalSteps || step % _options.RssSampleInterval == 0)
        {
            rss = MemoryProbe.ResidentMb();
            if (step == 100) run.RssAt100 = rss;
            run.RssLast = rss;
        }
        var metrics = new StepMetrics(step, epoch, result.Loss, optimizer.LearningRate, result.Damping, result.Rho,
            result.PredictedKl, result.SolverIterations, watch.Elapsed.TotalMilliseconds, rss, result.Skipped, result.CurvatureMs);
        run.Steps.Add(metrics);
        run.Progress?.OnStep(metrics);
        if (!double.IsFinite(result.Loss))
            throw new TrainingDivergedException(step, epoch, result.Loss, "loss", run.Result());
    }

    private void Evaluate(RunState run, Module<Tensor, Tensor> model, ILikelihood likelihood, Dataset ds, int epoch, double lr)
    {
        var (trainLoss, trainAcc) = Evaluator.Evaluate(model, likelihood, ds.TrainX, ds.TrainY, _options.EvalBatchSize);
        var (testLoss, testAcc) = Evaluator.Evaluate(model, likelihood, ds.TestX, ds.TestY, _options.EvalBatchSize);
        var metrics = new EpochMetrics(epoch, trainLoss, testLoss, trainAcc, testAcc, lr, run.Clock.Elapsed.TotalSeconds);
        run.Epochs.Add(metrics);
        run.Progress?.OnEpoch(metrics);
        if (!double.IsFinite(trainLoss))
            throw new TrainingDivergedException(run.Steps.Count, epoch, trainLoss, $"the training-set loss after epoch {epoch}", run.Result());
    }

    /// <summary>What a run has recorded so far.</summary>
    private sealed class RunState(TrainingPlan plan, ITrainingProgress? progress)
    {
        public TrainingPlan Plan { get; } = plan;
        public ITrainingProgress? Progress { get; } = progress;
        public List<StepMetrics> Steps { get; } = new();
        public List<EpochMetrics> Epochs { get; } = new();
        public Stopwatch Clock { get; } = new();
        public double? RssAt100 { get; set; }
        public double? RssLast { get; set; }

        public TrainingResult Result() =>
            new(Plan, Steps.ToList(), Epochs.ToList(), Clock.Elapsed.TotalSeconds, RssAt100, RssLast);
    }
}
