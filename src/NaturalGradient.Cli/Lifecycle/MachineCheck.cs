using NaturalGradient.Curvature;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using static TorchSharp.torch;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Checks a run against the machine before any work: the exact method's dense Fisher must fit in the available
/// memory. Predicted bytes = e · (4p² + n p) for p covered parameters, n = batch × outputs Jacobian rows (exact Fisher;
/// batch rows for the empirical one) and e bytes per element: the p × p metric, its damped copy, the identity and
/// the Cholesky factor, and the n × p Jacobian.
/// </summary>
internal static class MachineCheck
{
    /// <summary>Fraction of the available memory a run may plan to use.</summary>
    public const double MemoryShare = 0.8;

    public static void Run(TrainConfig config, Dataset data, TrainOptions options)
    {
        if (config.Optimizer.Name != "exact") return;
        long p;
        using (var model = ModelFactory.Build(config.Model, data.InputShape, data.OutputCount, config.Trainer.Dtype))
            p = ModelFactory.ParameterCount(model);
        if (p > config.Optimizer.MaxExactParameters) return; // the method itself refuses it with its own message
        double element = config.Trainer.Dtype == ScalarType.Float64 ? 8 : 4;
        long rows = config.Trainer.BatchSize * (config.Optimizer.Fisher == NaturalGradient.Fisher.FisherKind.Exact ? data.OutputCount : 1);
        double bytes = element * (4.0 * p * p + (double)rows * p);
        double available = AvailableBytes();
        if (bytes > MemoryShare * available)
            throw new UsageException(FormattableString.Invariant(
                $"{options.Optimizer.Name} exact needs about {bytes / 1e9:F1} GB for its dense {p}×{p} Fisher, more than {MemoryShare * 100:F0} % of the {available / 1e9:F1} GB of memory available; use kfac, ekfac, tengrad or hf, or a smaller --hidden"));
    }

    /// <summary>MemAvailable from /proc/meminfo, or the runtime's view of the memory limit.</summary>
    public static double AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
