using System.Diagnostics;
using NaturalGradient.Distributed;
using NaturalGradient.Optim;
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
    private readonly DataParallel? _parallel;

    /// <summary>Methods that run data-parallel (<see cref="DataParallel"/>).</summary>
    public static IReadOnlySet<string> DataParallelMethods { get; } =
        new HashSet<string> { "sgd", "adam", "exact", "block", "tengrad", "diag", "kfac", "ekfac", "auto" };

    /// <param name="model">The network to build (input/output sizes come from the data).</param>
    /// <param name="settings">The method and its hyper-parameters.</param>
    /// <param name="options">Epochs, batch size, seed, dtype, threads.</param>
    /// <param name="catalog">Where methods are looked up; <see cref="OptimizerCatalog.Default"/> if null.</param>
    /// <param name="communicator">Data-parallel training over this job (every rank runs the same Trainer on the same data;
    /// each takes its shard of every global batch of <see cref="TrainerOptions.BatchSize"/>, and only rank 0 writes
    /// checkpoints); null or a job of one process = ordinary training.</param>
    /// <exception cref="ArgumentOutOfRangeException">An invalid setting (validated here, before any tensor work).</exception>
    public Trainer(ModelSpec model, OptimizerSettings settings, TrainerOptions options, OptimizerCatalog? catalog = null,
        ICommunicator? communicator = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _catalog = catalog ?? OptimizerCatalog.Default;
        _model.Validate();
        _settings.Validate();
        _options.Validate();
        if (!_catalog.Contains(_settings.Name)) _catalog.Describe(_settings.Name); // throws, listing the known names
        if (communicator is { Size: > 1 })
        {
            var name = _settings.Name.Trim().ToLowerInvariant();
            if (!DataParallelMethods.Contains(name))
                throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.Name), _settings.Name,
                    $"'{name}' does not run data-parallel; methods that do: {string.Join(", ", DataParallelMethods)}");
            if (_options.BatchSize < communicator.Size)
                throw new ArgumentOutOfRangeException(nameof(TrainerOptions.BatchSize), _options.BatchSize,
                    $"the batch size {_options.BatchSize} is smaller than the {communicator.Size} ranks: every rank needs at least one example of each batch");
            _parallel = new DataParallel(communicator);
        }
    }

    /// <summary>Runs the training.</summary>
    /// <param name="data">Train/test split; not modified or disposed (a copy in the run's dtype is made).</param>
    /// <param name="progress">Optional observer of steps and epochs.</param>
    /// <param name="cancellation">Checked between steps; when triggered, a checkpoint of the last completed step is
    /// handed to <paramref name="checkpoints"/> and <see cref="TrainingInterruptedException"/> is thrown.</param>
    /// <param name="checkpoints">When and where to write checkpoints; null = none.</param>
    /// <param name="resume">Continue this checkpoint's run (same model, method, data, seed and batch size) instead of
    /// starting afresh. With the same thread count the continued run equals the one that never stopped, bit for bit.</param>
    /// <exception cref="ArgumentOutOfRangeException">The model kind does not fit the data's input shape.</exception>
    /// <exception cref="ResumeSettingsMismatchException"><paramref name="resume"/> was written by another method, or by this
    /// method with other settings (the message and <see cref="ResumeSettingsMismatchException.Differences"/> say which).</exception>
    /// <exception cref="InvalidDataException"><paramref name="resume"/> belongs to another run otherwise: model, data, dtype, seed,
    /// batch size, or a completed run (the message says what differs).</exception>
    /// <exception cref="TrainingDivergedException">A loss became NaN or infinite, or exceeded <see cref="TrainerOptions.DivergenceFactor"/> × its start.</exception>
    /// <exception cref="TrainingInterruptedException"><paramref name="cancellation"/> was triggered.</exception>
    public TrainingResult Run(Dataset data, ITrainingProgress? progress = null, CancellationToken cancellation = default,
        CheckpointPlan? checkpoints = null, TrainingCheckpoint? resume = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        _model.ValidateFor(data.InputShape);
        if (_parallel is not null && data.TrainCount % _options.BatchSize is var lastBatch and > 0 && lastBatch < _parallel.Communicator.Size)
            throw new ArgumentOutOfRangeException(nameof(TrainerOptions.BatchSize), _options.BatchSize,
                $"the last batch of each epoch has {lastBatch} examples ({data.TrainCount} mod {_options.BatchSize}), fewer than the {_parallel.Communicator.Size} ranks; choose a batch size that leaves 0 or at least {_parallel.Communicator.Size}");
        checkpoints?.Validate();
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
            DataParallel = _parallel,
            Log = progress is null ? null : progress.OnNote,
        });

        if (optimizer is NaturalGradientTrainingOptimizer natural)
            plan = plan with { CoverageLines = natural.Optimizer.Preconditioner.Coverage().SummaryLines() };
        var run = new RunState(plan, progress);
        var streams = new RunStreams(model, optimizer, batches, generator, sampler) { InputShape = ds.InputShape };
        run.Outputs = ds.OutputCount;
        int startEpoch = 1;
        long skip = 0;
        if (resume is not null)
        {
            CheckResume(resume, ds, plan);
            streams.Restore(resume.State);
            run.Steps.AddRange(resume.Steps);
            run.Epochs.AddRange(resume.Epochs);
            run.ElapsedBefore = resume.Header.ElapsedSeconds;
            startEpoch = resume.Header.Epoch;
            skip = resume.Header.BatchesDone;
        }
        progress?.OnStart(plan);
        run.Clock.Start();
        if (resume is null) Evaluate(run, model, likelihood, ds, epoch: 0, _settings.LearningRate);
        for (int epoch = startEpoch; epoch <= _options.Epochs; epoch++)
        {
            double lr = _settings.LearningRate * _settings.LrDecay.Factor(epoch - 1);
            optimizer.SetLearningRate(lr);
            model.train();
            using var epochStart = batches.GetState();
            long done = epoch == startEpoch ? skip : 0;
            foreach (var (bx, by) in batches.Epoch(done))
            {
                if (cancellation.IsCancellationRequested)
                {
                    bx.Dispose();
                    by.Dispose();
                    Interrupt(run, streams, checkpoints, epochStart, epoch, done);
                }
                TakeStep(run, optimizer, bx, by, epoch);
                done++;
                if (checkpoints?.EverySteps is { } every && run.Steps.Count % every == 0 && done < plan.StepsPerEpoch)
                    Checkpoint(run, streams, checkpoints, CheckpointReason.Periodic, epochStart, epoch, done);
            }
            Evaluate(run, model, likelihood, ds, epoch, lr);
            MemoryProbe.TrimNativeHeap();
            if (checkpoints is null) continue;
            bool last = epoch == _options.Epochs;
            bool stepDue = checkpoints.EverySteps is { } steps && run.Steps.Count % steps == 0;
            bool epochDue = checkpoints.EveryEpochs is { } epochs && epoch % epochs == 0;
            if (last || stepDue || epochDue)
            {
                using var next = batches.GetState();
                Checkpoint(run, streams, checkpoints, last ? CheckpointReason.Final : CheckpointReason.Periodic, next, epoch + 1, 0);
            }
        }
        return run.Result();
    }

    /// <summary>Refuses a checkpoint of another run: method, network, data, dtype, seed or batch size.</summary>
    private void CheckResume(TrainingCheckpoint resume, Dataset ds, TrainingPlan plan)
    {
        var h = resume.Header;
        void Expect<T>(T found, T expected, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(found, expected))
                throw new InvalidDataException($"the checkpoint is for {what} {found}, but this run has {expected}");
        }
        if (h.Optimizer != _settings.ToString())
            throw SettingsDifference.Refusal(h.Optimizer, _settings.ToString());
        Expect(h.Model, _model.ToString(), "the model");
        Expect(string.Join("×", h.InputShape), string.Join("×", ds.InputShape), "inputs of shape");
        Expect(h.Outputs, ds.OutputCount, "outputs:");
        Expect(h.Dtype, _options.Dtype.ToString(), "dtype");
        Expect(h.Seed, _options.Seed, "seed");
        Expect(h.BatchSize, _options.BatchSize, "batch size");
        Expect(h.TrainCount, ds.TrainCount, "training examples:");
        Expect(h.StepsPerEpoch, plan.StepsPerEpoch, "steps per epoch:");
        if (h.Epoch < 1 || h.BatchesDone < 0 || h.BatchesDone >= plan.StepsPerEpoch || h.Step != resume.Steps.Count)
            throw new InvalidDataException($"the checkpoint's position (epoch {h.Epoch}, batch {h.BatchesDone}, step {h.Step}) is inconsistent");
        if (h.Epoch > _options.Epochs)
            throw new InvalidDataException($"the checkpoint's run already completed {h.Epoch - 1} epochs; ask for more than {_options.Epochs} epochs to continue it");
    }

    private void Interrupt(RunState run, RunStreams streams, CheckpointPlan? checkpoints, Tensor epochStart, int epoch, long done)
    {
        if (checkpoints is not null) Checkpoint(run, streams, checkpoints, CheckpointReason.Interrupted, epochStart, epoch, done);
        throw new TrainingInterruptedException(run.Steps.Count, run.Result(), checkpointWritten: checkpoints is not null);
    }

    private void Checkpoint(RunState run, RunStreams streams, CheckpointPlan plan, CheckpointReason reason, Tensor epochStart, int epoch, long done)
    {
        // Every rank captures (distributed K-FAC's export is a collective); every rank then holds the same state: rank 0 writes it.
        var state = new NaturalGradientStateDict();
        streams.Capture(state, epochStart);
        if (_parallel is { Communicator.IsRoot: false })
        {
            state.Dispose();
            return;
        }
        var header = new CheckpointHeader
        {
            Reason = reason,
            Optimizer = _settings.ToString(),
            Model = _model.ToString(),
            InputShape = streams.InputShape ?? Array.Empty<long>(),
            Outputs = run.Outputs,
            Dtype = _options.Dtype.ToString(),
            Seed = _options.Seed,
            BatchSize = _options.BatchSize,
            TrainCount = run.Plan.TrainCount,
            StepsPerEpoch = run.Plan.StepsPerEpoch,
            Epochs = _options.Epochs,
            Epoch = epoch,
            BatchesDone = done,
            Step = run.Steps.Count,
            ElapsedSeconds = run.Elapsed,
        };
        using var checkpoint = new TrainingCheckpoint(header, run.Steps.ToList(), run.Epochs.ToList(), state);
        plan.Write(checkpoint, streams.Model);
    }

    private void TakeStep(RunState run, ITrainingOptimizer optimizer, Tensor bx, Tensor by, int epoch)
    {
        long step = run.Steps.Count + 1;
        StepResult result;
        var communicationBefore = _parallel?.Communicator.CommunicationTime;
        var watch = Stopwatch.StartNew();
        using (var scope = NewDisposeScope())
        {
            scope.Attach(bx, by); // the batch was made outside this scope (by the iterator): free it with the step
            var (x, y) = _parallel?.Shard(bx, by) ?? (bx, by);
            result = optimizer.Step(x, y);
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
            result.PredictedKl, result.SolverIterations, watch.Elapsed.TotalMilliseconds, rss, result.Skipped, result.CurvatureMs)
        {
            Approximation = result.Approximation,
            SolverIterationsUnpreconditioned = result.SolverIterationsUnpreconditioned,
            CommunicationMs = communicationBefore is { } before ? (_parallel!.Communicator.CommunicationTime - before).TotalMilliseconds : null,
        };
        run.Steps.Add(metrics);
        run.Progress?.OnStep(metrics);
        if (!double.IsFinite(result.Loss))
            throw new TrainingDivergedException(step, epoch, result.Loss, "loss", run.Result());
        if (_options.DivergenceFactor is { } factor && run.StartLoss is > 0 and var start && result.Loss > factor * start)
            throw new TrainingDivergedException(step, epoch, result.Loss,
                FormattableString.Invariant($"the batch loss, more than {factor:G3} × the untrained model's training loss {start:G4},"), run.Result());
    }

    private void Evaluate(RunState run, Module<Tensor, Tensor> model, ILikelihood likelihood, Dataset ds, int epoch, double lr)
    {
        var (trainLoss, trainAcc) = Evaluator.Evaluate(model, likelihood, ds.TrainX, ds.TrainY, _options.EvalBatchSize);
        var (testLoss, testAcc) = Evaluator.Evaluate(model, likelihood, ds.TestX, ds.TestY, _options.EvalBatchSize);
        var metrics = new EpochMetrics(epoch, trainLoss, testLoss, trainAcc, testAcc, lr, run.Elapsed);
        run.Epochs.Add(metrics);
        run.Progress?.OnEpoch(metrics);
        if (!double.IsFinite(trainLoss))
            throw new TrainingDivergedException(run.Steps.Count, epoch, trainLoss, $"the training-set loss after epoch {epoch}", run.Result());
        if (_options.DivergenceFactor is { } factor && run.StartLoss is > 0 and var start && trainLoss > factor * start)
            throw new TrainingDivergedException(run.Steps.Count, epoch, trainLoss,
                FormattableString.Invariant($"the training-set loss after epoch {epoch}, more than {factor:G3} × its start {start:G4},"), run.Result());
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

        /// <summary>Wall time of the training loop before a resume.</summary>
        public double ElapsedBefore { get; set; }

        /// <summary>Wall time of the training loop, earlier sessions of a resumed run included.</summary>
        public double Elapsed => ElapsedBefore + Clock.Elapsed.TotalSeconds;

        /// <summary>The untrained model's training-set loss (epoch 0), the reference of the divergence test.</summary>
        public double? StartLoss => Epochs.Count > 0 && Epochs[0].Epoch == 0 ? Epochs[0].TrainLoss : null;

        /// <summary>Network outputs.</summary>
        public long Outputs { get; set; }

        public TrainingResult Result() =>
            new(Plan, Steps.ToList(), Epochs.ToList(), Elapsed, RssAt100, RssLast);
    }
}
