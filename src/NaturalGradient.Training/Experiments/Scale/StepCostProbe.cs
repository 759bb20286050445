using System.Diagnostics;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Training.Experiments.Scale;

/// <summary>How <see cref="StepCostProbe"/> times a method.</summary>
public sealed record ProbeOptions
{
    /// <summary>Examples per step, ≥ 1; default 128.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Untimed steps before timing, ≥ 0; default 3.</summary>
    public int Warmup { get; init; } = 3;

    /// <summary>Timed steps, ≥ 1; default 10.</summary>
    public int Repeats { get; init; } = 10;

    /// <summary>Parameter and data dtype (float32 or float64); default float32.</summary>
    public ScalarType Dtype { get; init; } = ScalarType.Float32;

    /// <summary>Seed of the initial weights, the synthetic data and the method's generator; default 0.</summary>
    public long Seed { get; init; }

    /// <summary>Hyper-parameters of every method (the name is set per measurement); default <see cref="ScaleSettings"/>.</summary>
    public OptimizerSettings Settings { get; init; } = ScaleSettings();

    /// <summary>
    /// Seed 000's protocol for timing: plain steps (no momentum), constant damping 0.01, the empirical Fisher unless
    /// <paramref name="fisher"/> says otherwise, 10 Hessian-free CG iterations, and no cap on the exact method's size
    /// (the memory budget decides instead).
    /// </summary>
    public static OptimizerSettings ScaleSettings(Fisher.FisherKind fisher = Fisher.FisherKind.Empirical) => new()
    {
        LearningRate = 0.01, Momentum = 0, Damping = 1e-2, Fisher = fisher, HfMaxIterations = 10, MaxExactParameters = int.MaxValue,
    };

    /// <summary>Checks every value.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Names the property and the value.</exception>
    public void Validate()
    {
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"{nameof(BatchSize)} must be ≥ 1, got {BatchSize}");
        if (Warmup < 0) throw new ArgumentOutOfRangeException(nameof(Warmup), Warmup, $"{nameof(Warmup)} must be ≥ 0, got {Warmup}");
        if (Repeats < 1) throw new ArgumentOutOfRangeException(nameof(Repeats), Repeats, $"{nameof(Repeats)} must be ≥ 1, got {Repeats}");
        if (Dtype is not (ScalarType.Float32 or ScalarType.Float64))
            throw new ArgumentOutOfRangeException(nameof(Dtype), Dtype, $"{nameof(Dtype)} must be Float32 or Float64, got {Dtype}");
        ArgumentNullException.ThrowIfNull(Settings, nameof(Settings));
    }
}

/// <summary>
/// Times optimisation steps of one method: <c>Warmup</c> untimed steps, then <c>Repeats</c> timed ones on the same
/// batch (each in its own dispose scope, timed by a <see cref="Stopwatch"/> around the scope), and reports the
/// median, 10th and 90th percentile and the process's peak resident memory (VmHWM) read after the timed steps.
/// Peak memory is only meaningful when the probe runs alone in its process (<c>natgrad scale-point</c>).
/// </summary>
public static class StepCostProbe
{
    /// <summary>
    /// One point of the scaling experiment: a tanh MLP of <paramref name="size"/> on synthetic regression data
    /// (x and y standard normal, seeded), Gaussian likelihood.
    /// </summary>
    /// <param name="method">Catalog name.</param>
    /// <param name="size">Depth, width, inputs and outputs of the MLP.</param>
    /// <param name="options">Batch, warm-up, repeats, dtype, seed and settings.</param>
    /// <param name="catalog">Where the method is looked up; <see cref="OptimizerCatalog.Default"/> if null.</param>
    /// <param name="onTiming">Called once the model and data are built, just before the first (warm-up) step.</param>
    /// <returns>A measured point, or a <see cref="PointStatus.Refused"/> one with the method's message.</returns>
    public static PointMeasurement Measure(string method, ModelSize size, ProbeOptions options, OptimizerCatalog? catalog = null,
        Action? onTiming = null)
    {
        ArgumentNullException.ThrowIfNull(size);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        manual_seed(options.Seed);
        using var model = ModelFactory.Mlp(new long[] { size.Inputs }, size.Outputs, size.Hidden(), Activation.Tanh, options.Dtype);
        using var x = randn(options.BatchSize, size.Inputs, dtype: options.Dtype);
        using var y = randn(options.BatchSize, size.Outputs, dtype: options.Dtype);
        return Measure(method, model, x, y, new GaussianLikelihood(), options, catalog, onTiming) with { Size = size };
    }

    /// <summary>Times <paramref name="method"/> on a given model and batch (the benchmarks' real-data problems).</summary>
    /// <param name="method">Catalog name.</param>
    /// <param name="model">The model (not disposed; its parameters are updated).</param>
    /// <param name="x">One batch of inputs, in the model's dtype.</param>
    /// <param name="y">Its targets (float m × o, or int64 class indices).</param>
    /// <param name="likelihood">Loss and output Fisher.</param>
    /// <param name="options">Warm-up, repeats, seed and settings (<c>BatchSize</c> and <c>Dtype</c> are those of the tensors).</param>
    /// <param name="catalog">Where the method is looked up; <see cref="OptimizerCatalog.Default"/> if null.</param>
    /// <param name="onTiming">Called just before the first (warm-up) step.</param>
    public static PointMeasurement Measure(string method, Module<Tensor, Tensor> model, Tensor x, Tensor y, ILikelihood likelihood,
        ProbeOptions options, OptimizerCatalog? catalog = null, Action? onTiming = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(method);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        catalog ??= OptimizerCatalog.Default;
        var size = new ModelSize(0, 0, (int)x.shape[^1]);
        PointMeasurement Refused(Exception e) => new()
        {
            Method = method, Sweep = SweepKind.Depth, Size = size, Status = PointStatus.Refused,
            Message = OneLine(e is ArgumentOutOfRangeException a && a.ParamName is { } p ? a.Message.Replace($" (Parameter '{p}')", "") : e.Message),
            Threads = get_num_threads(),
        };

        using var generator = new Generator((ulong)options.Seed);
        ITrainingOptimizer optimizer;
        try
        {
            optimizer = catalog.Create(new OptimizerContext
            {
                Model = model, Likelihood = likelihood, Settings = options.Settings with { Name = method },
                Generator = generator, StepsPerEpoch = 1, BatchSize = checked((int)x.shape[0]), TotalSteps = options.Warmup + options.Repeats,
            });
        }
        catch (Exception e) when (IsRefusal(e))
        {
            return Refused(e);
        }

        using (optimizer)
        {
            onTiming?.Invoke();
            model.train();
            var times = new double[options.Repeats];
            for (int i = 0; i < options.Warmup + options.Repeats; i++)
            {
                if (i == options.Warmup) GC.Collect(); // start the timed steps with a clean managed heap
                var watch = Stopwatch.StartNew();
                try
                {
                    using (NewDisposeScope()) optimizer.Step(x, y);
                }
                catch (Exception e) when (i == 0 && IsRefusal(e))
                {
                    return Refused(e); // the method only finds out on its first step that it cannot handle the model
                }
                watch.Stop();
                if (i >= options.Warmup) times[i - options.Warmup] = watch.Elapsed.TotalMilliseconds;
            }
            Array.Sort(times);
            return new PointMeasurement
            {
                Method = method, Sweep = SweepKind.Depth, Size = size, Status = PointStatus.Measured,
                MedianMs = Percentile(times, 0.5), P10Ms = Percentile(times, 0.1), P90Ms = Percentile(times, 0.9),
                TimedSteps = times.Length, PeakMb = MemoryProbe.PeakResidentMb(), Threads = get_num_threads(),
            };
        }
    }

    /// <summary>The <paramref name="q"/>-quantile of sorted values, linearly interpolated between order statistics.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double q)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0) return double.NaN;
        double pos = Math.Clamp(q, 0, 1) * (sorted.Count - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>A method's way of saying it cannot handle this model or these settings (as opposed to a failure).</summary>
    public static bool IsRefusal(Exception e) =>
        e is ArgumentOutOfRangeException or NotSupportedException or Curvature.ModelNotSupportedException or Capture.LayerNotObservedException;

    private static string OneLine(string text) =>
        string.Join(" ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
