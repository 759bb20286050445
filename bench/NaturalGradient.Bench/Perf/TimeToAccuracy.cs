using System.Diagnostics;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench.Perf;

/// <summary>One training run of the time-to-accuracy part.</summary>
internal sealed record AccuracyRun(string Method, double LearningRate, double? SecondsTo85, long? StepsTo85, double? SecondsTo88, long? StepsTo88,
    double BestTestAccuracy, long Steps, double TrainSeconds, string? Note, IReadOnlyList<(long Step, double Seconds, double Accuracy)> Curve);

/// <summary>
/// Time to 85 % and 88 % Fashion-MNIST test accuracy: MLP 784-512-512-10 (ReLU, float32), batch 256, the torch threads
/// the process runs with, at most <c>epochs</c> epochs. Only the optimisation steps are timed (one Stopwatch around
/// each step); the test accuracy is evaluated every <see cref="EvalEvery"/> steps (50 by default) outside the timer. A run stops at 88 %, at the budget,
/// or when the loss is no longer finite. Every method starts from the same initial weights and batch order; all runs
/// train in lockstep (<see cref="TrainInterleaved"/>).
/// </summary>
internal static class TimeToAccuracy
{
    public const int Batch = 256;

    /// <summary>Steps between test evaluations (<c>--eval-every</c>); default 50.</summary>
    public static int EvalEvery { get; set; } = 50;

    /// <summary>K-FAC/EKFAC inverse period (<c>--inverse-period</c>); null (default): the library's, K-FAC 10 and EKFAC 20.</summary>
    public static int? InversePeriod { get; set; }

    /// <summary>K-FAC/EKFAC factor period (<c>--factor-period</c>); default the library's (<see cref="NaturalGradient.Curvature.Kfac.KfacOptions.FactorUpdatePeriod"/>).</summary>
    public static int FactorPeriod { get; set; } = new NaturalGradient.Curvature.Kfac.KfacOptions().FactorUpdatePeriod;

    /// <summary>The learning-rate grid per method (the quick run uses the middle value).</summary>
    public static readonly IReadOnlyDictionary<string, double[]> Grid = new Dictionary<string, double[]>
    {
        ["adam"] = new[] { 3e-4, 1e-3, 3e-3 },
        ["sgd"] = new[] { 0.03, 0.1, 0.3 },
        ["kfac"] = new[] { 0.03, 0.1, 0.3 },
        ["ekfac"] = new[] { 0.03, 0.1, 0.3 },
        ["kfac-bf16inv"] = new[] { 0.03, 0.1, 0.3 },
        ["ekfac-bf16inv"] = new[] { 0.03, 0.1, 0.3 },
        ["tengrad"] = new[] { 0.03, 0.1, 0.3 },
        ["diag"] = new[] { 0.003, 0.01, 0.03 },
        ["hf"] = new[] { 0.03, 0.1, 0.3 },
        ["auto"] = new[] { 0.03, 0.1, 0.3 },
    };

    /// <summary>
    /// What the KL clip bounds (<c>--kl-clip-form</c> of the perf command) for every method; null (the default) = per
    /// method as natgrad's defaults: η²Δᵀg for K-FAC and EKFAC, the applied step's ½uᵀMu for the others (<see cref="ClipFormOf"/>).
    /// </summary>
    public static NaturalGradient.Optim.KlClipForm? ClipForm { get; set; }

    /// <summary>The clip form <paramref name="method"/> runs with (<see cref="ClipForm"/>).</summary>
    public static NaturalGradient.Optim.KlClipForm ClipFormOf(string method) => ClipForm
        ?? (StepConfigs.BaseMethod(method) is "kfac" or "ekfac" ? NaturalGradient.Optim.KlClipForm.PreconditionedGradient : NaturalGradient.Optim.KlClipForm.StepQuadraticForm);

    /// <summary>K-FAC/EKFAC factor GEMM precision (<c>--factor-precision</c>); default the model's.</summary>
    public static NaturalGradient.Curvature.Kfac.KfacFactorPrecision FactorPrecision { get; set; }

    /// <summary>The natural-gradient methods' KL clip κ (<c>--kl-clip</c>); default 1e-3.</summary>
    public static double KlClip { get; set; } = 1e-3;

    /// <summary>The natural-gradient methods' damping λ (<c>--damping</c>); default 0.01.</summary>
    public static double Damping { get; set; } = 1e-2;

    /// <summary>Momentum of SGD and the natural-gradient methods (<c>--momentum</c>); default 0.9. Adam keeps β₁ = 0.9.</summary>
    public static double Momentum { get; set; } = 0.9;

    /// <summary>
    /// Settings of every method besides the learning rate: momentum <see cref="Momentum"/> (Adam: β = 0.9, 0.999); natural-gradient
    /// methods: empirical Fisher, damping <see cref="Damping"/>, KL clip <see cref="KlClip"/> (K-FAC's norm constraint, measured as
    /// <see cref="ClipFormOf"/> says), K-FAC/EKFAC inverses every <see cref="InversePeriod"/> steps (null: the library's defaults, K-FAC 10 by Cholesky, EKFAC 20) and
    /// factors every <see cref="FactorPeriod"/>, Hessian-free 10 CG iterations.
    /// </summary>
    public static OptimizerSettings Settings(string method, double lr) => new()
    {
        Name = StepConfigs.BaseMethod(method), LearningRate = lr, Momentum = method == "adam" ? 0.9 : Momentum, Damping = Damping,
        KlClip = method is "sgd" or "adam" ? null : KlClip, KlClipForm = ClipFormOf(method),
        InverseUpdatePeriod = InversePeriod, FactorUpdatePeriod = FactorPeriod, KfacFactorPrecision = FactorPrecision, HfMaxIterations = 10,
        KfacInversePrecision = StepConfigs.InversePrecisionOf(method),
    };

    /// <summary>Steps of the untimed warm-up run each method takes before its grid (<see cref="Warmup"/>).</summary>
    public const int WarmupSteps = 30;

    /// <summary>
    /// <paramref name="steps"/> steps of <paramref name="method"/> on a model of its own, untimed and discarded: the process's
    /// first use of the method's code (JIT tiers), kernels and native allocations happens here, not in the grid's first run.
    /// </summary>
    public static void Warmup(Dataset data, string method, double lr, int steps)
    {
        using var run = new AccuracyTraining(data, method, lr, epochs: 1);
        run.Advance(steps, _ => { });
    }

    /// <summary>
    /// Trains every (method, lr) of <paramref name="runs"/> in lockstep: each in turn takes <see cref="EvalEvery"/> steps
    /// (timed) and an evaluation (untimed), until every run has reached 88 %, its budget or a non-finite loss. The runs
    /// thus share the machine's conditions over the whole measurement (a shared machine's speed drifts by tens of percent
    /// over minutes; trained one after another, a method's time also measured when it happened to run).
    /// </summary>
    public static List<AccuracyRun> TrainInterleaved(Dataset data, IReadOnlyList<(string Method, double LearningRate)> runs, int epochs,
        Action<string> log, Action<AccuracyRun> finished)
    {
        var trainings = runs.Select(r => new AccuracyTraining(data, r.Method, r.LearningRate, epochs)).ToList();
        try
        {
            var results = new AccuracyRun?[trainings.Count];
            while (results.Any(r => r is null))
            {
                for (int i = 0; i < trainings.Count; i++)
                {
                    if (results[i] is not null) continue;
                    trainings[i].Advance(EvalEvery, log);
                    if (!trainings[i].Finished) continue;
                    results[i] = trainings[i].Result();
                    finished(results[i]!);
                }
            }
            return results.Select(r => r!).ToList();
        }
        finally
        {
            foreach (var t in trainings) t.Dispose();
        }
    }
}

/// <summary>
/// One run of the time-to-accuracy part, advanced a number of steps at a time (<see cref="TimeToAccuracy.TrainInterleaved"/>):
/// its own model (initial weights from seed 0, as every run's), optimizer, batch order (seed 1) and timer.
/// </summary>
internal sealed class AccuracyTraining : IDisposable
{
    private readonly Dataset _data;
    private readonly string _method;
    private readonly double _lr;
    private readonly int _epochs;
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly CategoricalLikelihood _likelihood = new();
    private readonly Generator _generator = new(0), _order = new(1);
    private readonly ITrainingOptimizer _optimizer;
    private readonly long _stepsPerEpoch;
    private readonly List<(long, double, double)> _curve = new();
    private Tensor? _permutation;
    private int _epoch;
    private long _batch, _step;
    private double _seconds, _best;
    private double? _t85, _t88;
    private long? _s85, _s88;
    private string? _note;

    public AccuracyTraining(Dataset data, string method, double lr, int epochs)
    {
        (_data, _method, _lr, _epochs) = (data, method, lr, epochs);
        manual_seed(0);
        _model = ModelFactory.Mlp(data.InputShape, data.OutputCount, new[] { 512, 512 }, Activation.Relu, ScalarType.Float32);
        _stepsPerEpoch = data.TrainCount / TimeToAccuracy.Batch;
        _optimizer = OptimizerCatalog.Default.Create(new OptimizerContext
        {
            Model = _model, Likelihood = _likelihood, Settings = TimeToAccuracy.Settings(method, lr), Generator = _generator,
            StepsPerEpoch = _stepsPerEpoch, TotalSteps = _stepsPerEpoch * epochs, BatchSize = TimeToAccuracy.Batch,
        });
    }

    /// <summary>True once the run reached 88 %, its budget of epochs, or a non-finite loss.</summary>
    public bool Finished => _t88 is not null || _note is not null || _epoch >= _epochs;

    /// <summary>Up to <paramref name="steps"/> timed steps, with the test accuracy evaluated (untimed) every <see cref="TimeToAccuracy.EvalEvery"/> steps.</summary>
    public void Advance(int steps, Action<string> log)
    {
        for (int k = 0; k < steps && !Finished; k++)
        {
            if (_permutation is null) _permutation = randperm(_data.TrainCount, generator: _order).DetachFromDisposeScope();
            using (var scope = NewDisposeScope())
            {
                var idx = _permutation.narrow(0, _batch * TimeToAccuracy.Batch, TimeToAccuracy.Batch);
                var x = _data.TrainX.index_select(0, idx);
                var y = _data.TrainY.index_select(0, idx);
                _model.train();
                var watch = Stopwatch.StartNew();
                var result = _optimizer.Step(x, y);
                watch.Stop();
                _seconds += watch.Elapsed.TotalSeconds;
                _step++;
                if (!double.IsFinite(result.Loss)) { _note = $"loss not finite at step {_step}"; break; }
            }
            if (++_batch == _stepsPerEpoch)
            {
                _batch = 0;
                _epoch++;
                _permutation.Dispose();
                _permutation = null;
            }
            if (_step % TimeToAccuracy.EvalEvery != 0) continue;
            var (_, acc) = Evaluator.Evaluate(_model, _likelihood, _data.TestX, _data.TestY, 2000);
            double a = acc ?? 0;
            _curve.Add((_step, _seconds, a));
            _best = Math.Max(_best, a);
            if (a >= 0.85 && _t85 is null) { _t85 = _seconds; _s85 = _step; }
            if (a >= 0.88 && _t88 is null) { _t88 = _seconds; _s88 = _step; }
            log($"  {_method} lr {_lr:G3}: step {_step}, {_seconds:F1} s training, test accuracy {a:P1}");
        }
    }

    public AccuracyRun Result() => new(_method, _lr, _t85, _s85, _t88, _s88, _best, _step, _seconds, _note, _curve);

    public void Dispose()
    {
        _permutation?.Dispose();
        _optimizer.Dispose();
        _model.Dispose();
        _generator.Dispose();
        _order.Dispose();
    }
}
