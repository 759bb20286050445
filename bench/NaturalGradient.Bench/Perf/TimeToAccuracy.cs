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
/// or when the loss is no longer finite. Every method starts from the same initial weights and batch order.
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
        ?? (method is "kfac" or "ekfac" ? NaturalGradient.Optim.KlClipForm.PreconditionedGradient : NaturalGradient.Optim.KlClipForm.StepQuadraticForm);

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
        Name = method, LearningRate = lr, Momentum = method == "adam" ? 0.9 : Momentum, Damping = Damping,
        KlClip = method is "sgd" or "adam" ? null : KlClip, KlClipForm = ClipFormOf(method),
        InverseUpdatePeriod = InversePeriod, FactorUpdatePeriod = FactorPeriod, KfacFactorPrecision = FactorPrecision, HfMaxIterations = 10,
    };

    /// <summary>Steps of the untimed warm-up run each method takes before its grid (<see cref="Warmup"/>).</summary>
    public const int WarmupSteps = 30;

    /// <summary>
    /// <paramref name="steps"/> steps of <paramref name="method"/> on a model of its own, untimed and discarded: the process's
    /// first use of the method's code (JIT tiers), kernels and native allocations happens here, not in the grid's first run.
    /// </summary>
    public static void Warmup(Dataset data, string method, double lr, int steps)
    {
        manual_seed(0);
        using var model = ModelFactory.Mlp(data.InputShape, data.OutputCount, new[] { 512, 512 }, Activation.Relu, ScalarType.Float32);
        using var generator = new Generator(0);
        using var optimizer = OptimizerCatalog.Default.Create(new OptimizerContext
        {
            Model = model, Likelihood = new CategoricalLikelihood(), Settings = Settings(method, lr), Generator = generator,
            StepsPerEpoch = steps, TotalSteps = steps, BatchSize = Batch,
        });
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var rows = arange(s * Batch, (s + 1) * Batch, dtype: ScalarType.Int64).remainder_(data.TrainCount);
            optimizer.Step(data.TrainX.index_select(0, rows), data.TrainY.index_select(0, rows));
        }
    }

    public static AccuracyRun Train(Dataset data, string method, double lr, int epochs, Action<string> log)
    {
        manual_seed(0);
        using var model = ModelFactory.Mlp(data.InputShape, data.OutputCount, new[] { 512, 512 }, Activation.Relu, ScalarType.Float32);
        var likelihood = new CategoricalLikelihood();
        long n = data.TrainCount, stepsPerEpoch = n / Batch;
        using var generator = new Generator(0);
        using var optimizer = OptimizerCatalog.Default.Create(new OptimizerContext
        {
            Model = model, Likelihood = likelihood, Settings = Settings(method, lr), Generator = generator,
            StepsPerEpoch = stepsPerEpoch, TotalSteps = stepsPerEpoch * epochs, BatchSize = Batch,
        });
        using var order = new Generator(1);
        var curve = new List<(long, double, double)>();
        double seconds = 0, best = 0;
        double? t85 = null, t88 = null;
        long? s85 = null, s88 = null;
        long step = 0;
        string? note = null;
        for (int epoch = 0; epoch < epochs && t88 is null && note is null; epoch++)
        {
            using var perm = randperm(n, generator: order);
            for (long b = 0; b < stepsPerEpoch && t88 is null; b++)
            {
                using var scope = NewDisposeScope();
                var idx = perm.narrow(0, b * Batch, Batch);
                var x = data.TrainX.index_select(0, idx);
                var y = data.TrainY.index_select(0, idx);
                model.train();
                var watch = Stopwatch.StartNew();
                var result = optimizer.Step(x, y);
                watch.Stop();
                seconds += watch.Elapsed.TotalSeconds;
                step++;
                if (!double.IsFinite(result.Loss)) { note = $"loss not finite at step {step}"; break; }
                if (step % EvalEvery != 0) continue;
                var (_, acc) = Evaluator.Evaluate(model, likelihood, data.TestX, data.TestY, 2000);
                double a = acc ?? 0;
                curve.Add((step, seconds, a));
                best = Math.Max(best, a);
                if (a >= 0.85 && t85 is null) { t85 = seconds; s85 = step; }
                if (a >= 0.88 && t88 is null) { t88 = seconds; s88 = step; }
                log($"  {method} lr {lr:G3}: step {step}, {seconds:F1} s training, test accuracy {a:P1}");
            }
        }
        return new AccuracyRun(method, lr, t85, s85, t88, s88, best, step, seconds, note, curve);
    }
}
