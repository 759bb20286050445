namespace NaturalGradient.Training.TensorBoard;

/// <summary>
/// Logs a <see cref="Trainer"/> run to TensorBoard. Per step (x = global step): <c>train/batch_loss</c>,
/// <c>optimizer/learning_rate</c>, and when the method reports them <c>optimizer/damping</c>, <c>optimizer/rho</c>,
/// <c>optimizer/predicted_kl</c>, <c>optimizer/solver_iterations</c>, <c>optimizer/skipped_steps</c> (running count),
/// <c>time/step_ms</c>, <c>time/curvature_ms</c>. Per evaluation (x = steps done, 0 for the untrained model):
/// <c>epoch/train_loss</c>, <c>epoch/test_loss</c>, <c>epoch/train_accuracy</c>, <c>epoch/test_accuracy</c> (classification),
/// <c>epoch/elapsed_s</c>.
/// </summary>
public sealed class TensorBoardProgress : ITrainingProgress
{
    private readonly Func<TensorBoardWriter> _open;
    private TensorBoardWriter? _writer;
    private long _stepsPerEpoch;
    private long _skipped;

    /// <param name="writer">Where to write; not disposed by this object.</param>
    public TensorBoardProgress(TensorBoardWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        _open = () => writer;
    }

    /// <param name="open">
    /// Gives the writer when the run starts (<see cref="OnStart"/>, after every check that can refuse the run), so that
    /// a refused run creates no event file; the writer is not disposed by this object.
    /// </param>
    public TensorBoardProgress(Func<TensorBoardWriter> open) => _open = open ?? throw new ArgumentNullException(nameof(open));

    /// <summary>The writer, opened on first use (<see cref="OnStart"/> for a trainer's run).</summary>
    private TensorBoardWriter Writer => _writer ??= _open();

    public void OnStart(TrainingPlan plan)
    {
        _ = Writer;
        _stepsPerEpoch = plan.StepsPerEpoch;
    }

    public void OnStep(StepMetrics s)
    {
        if (s.Skipped) _skipped++;
        var values = new List<(string, double)>(10)
        {
            (Tags.BatchLoss, s.Loss),
            (Tags.LearningRate, s.LearningRate),
            (Tags.StepMs, s.StepMs),
        };
        if (s.Damping is { } damping) values.Add((Tags.Damping, damping));
        if (s.Rho is { } rho) values.Add((Tags.Rho, rho));
        if (s.PredictedKl is { } kl) values.Add((Tags.PredictedKl, kl));
        if (s.SolverIterations is { } it) values.Add((Tags.SolverIterations, it));
        if (s.SolverIterationsUnpreconditioned is { } plain) values.Add((Tags.SolverIterationsUnpreconditioned, plain));
        if (s.CurvatureMs is { } ms) values.Add((Tags.CurvatureMs, ms));
        if (s.Damping is not null || _skipped > 0) values.Add((Tags.SkippedSteps, _skipped));
        Writer.AddScalars(s.Step, values);
    }

    public void OnEpoch(EpochMetrics e)
    {
        var values = new List<(string, double)>(5) { (Tags.TrainLoss, e.TrainLoss), (Tags.ElapsedSeconds, e.ElapsedSeconds) };
        if (double.IsFinite(e.TestLoss)) values.Add((Tags.TestLoss, e.TestLoss));
        if (e.TrainAccuracy is { } trainAcc) values.Add((Tags.TrainAccuracy, trainAcc));
        if (e.TestAccuracy is { } testAcc) values.Add((Tags.TestAccuracy, testAcc));
        Writer.AddScalars(e.Epoch * _stepsPerEpoch, values);
        Writer.Flush();
    }

    /// <summary>The series names.</summary>
    public static class Tags
    {
        public const string BatchLoss = "train/batch_loss";
        public const string LearningRate = "optimizer/learning_rate";
        public const string Damping = "optimizer/damping";
        public const string Rho = "optimizer/rho";
        public const string PredictedKl = "optimizer/predicted_kl";
        public const string SolverIterations = "optimizer/solver_iterations";
        public const string SolverIterationsUnpreconditioned = "optimizer/solver_iterations_unpreconditioned";
        public const string SkippedSteps = "optimizer/skipped_steps";
        public const string StepMs = "time/step_ms";
        public const string CurvatureMs = "time/curvature_ms";
        public const string TrainLoss = "epoch/train_loss";
        public const string TestLoss = "epoch/test_loss";
        public const string TrainAccuracy = "epoch/train_accuracy";
        public const string TestAccuracy = "epoch/test_accuracy";
        public const string ElapsedSeconds = "epoch/elapsed_s";
    }
}
