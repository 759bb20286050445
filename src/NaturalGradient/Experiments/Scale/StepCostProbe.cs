using System.Diagnostics;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Models;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Experiments.Scale;

/// <summary>
/// Times optimisation steps of one method on a synthetic regression problem (MLP of the given size, float32):
/// <c>warmup</c> untimed steps, then the median, 10th and 90th percentile of <c>repeats</c> timed steps, and the
/// process's peak resident memory. Meant to run alone in its own process (natgrad scale-point).
/// </summary>
public static class StepCostProbe
{
    public static PointMeasurement Measure(string method, ModelSize size, int batchSize, int warmup, int repeats,
        OptimizerSettings settings, long seed = 0)
    {
        manual_seed(seed);
        var model = ModelFactory.Mlp(new long[] { size.Inputs }, size.Outputs, Enumerable.Repeat(size.Width, size.Depth).ToArray(),
            Activation.Tanh, ScalarType.Float32);
        var x = randn(batchSize, size.Inputs);
        var y = randn(batchSize, size.Outputs);
        using var generator = new Generator((ulong)seed);
        using var optimizer = OptimizerCatalog.Default.Create(new OptimizerContext
        {
            Model = model, Likelihood = new GaussianLikelihood(), Settings = settings with { Name = method },
            Generator = generator, StepsPerEpoch = 1, BatchSize = batchSize, TotalSteps = warmup + repeats,
        });
        var times = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            var watch = Stopwatch.StartNew();
            using (var _ = NewDisposeScope()) optimizer.Step(x, y);
            watch.Stop();
            if (i >= warmup) times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        double Q(double q) => times[(int)Math.Round(q * (times.Count - 1))];
        return new PointMeasurement
        {
            Method = method, Sweep = SweepKind.Depth, Size = size, Status = PointStatus.Measured,
            MedianMs = Q(0.5), P10Ms = Q(0.1), P90Ms = Q(0.9), PeakMb = MemoryProbe.PeakResidentMb(),
        };
    }
}
