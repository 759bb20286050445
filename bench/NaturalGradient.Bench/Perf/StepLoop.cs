using NaturalGradient.Likelihoods;
using NaturalGradient.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench.Perf;

/// <summary>
/// One configuration of <c>perf --part steps</c> (MLP 784-512-512-10, ReLU, float32, the first Fashion-MNIST batch, or
/// with <c>--depth</c> a figure-5 net on a synthetic batch of 128 drawn with seed 0; <see cref="StepConfigs"/>' settings) stepped on its own for a given number of steps, for a profiler such as
/// <c>perf record</c>: 40 untimed warm-up steps, then the steps, each in its own dispose scope. Prints the mean step time
/// and the minor page faults per step (<c>/proc/self/stat</c>, the process's first touches of fresh memory).
/// </summary>
/// <remarks>
/// <c>loop --method kfac [--path optimizer|preconditioner|lean] [--steps 1000] [--threads 2] [--batch 256] [--depth D]</c>;
/// <c>--method sgd</c> and <c>adam</c> take no path. A lone run's time is not a benchmark figure: the machine's speed
/// drifts between runs, which <c>perf --part steps</c> cancels by interleaving configurations in one process.
/// </remarks>
internal static class StepLoop
{
    private const int WarmUpSteps = 40;

    private static readonly string[] Options = { "--method", "--path", "--steps", "--threads", "--batch", "--depth" };

    public static int Run(string[] args)
    {
        for (int i = 0; i < args.Length; i += 2)
            if (!Options.Contains(args[i]))
                throw new ArgumentException($"unknown option '{args[i]}' (loop takes {string.Join(", ", Options)}, each with a value)");
        string method = Value(args, "--method") ?? throw new ArgumentException("loop needs --method (sgd, adam or one of perf's natural-gradient methods)");
        bool plain = method is "sgd" or "adam";
        string path = Value(args, "--path") ?? (plain ? "sgd" : "optimizer");
        if (plain ? path != "sgd" : path is not ("optimizer" or "preconditioner" or "lean"))
            throw new ArgumentException($"option --path: expected optimizer, preconditioner or lean for {method}, got '{path}'");
        if (path == "lean" && !LeanStep.Methods.Contains(method))
            throw new ArgumentException($"option --path: lean steps exist for {string.Join(", ", LeanStep.Methods)}, not '{method}'");
        if (!plain && !StepConfigs.NaturalGradientMethods.Concat(StepConfigs.SerialFactorizationMethods).Contains(method))
            throw new ArgumentException($"option --method: unknown method '{method}'");
        int steps = Positive(args, "--steps", 1000), threads = Positive(args, "--threads", 2), batch = Positive(args, "--batch", 256);

        int? depth = Value(args, "--depth") is null ? null : Positive(args, "--depth", 1);
        torch.set_num_threads(threads);
        Tensor x, y;
        List<StepConfig> configs;
        var requested = new[] { path == "lean" ? method + "-lean" : method };
        if (depth is { } d)
        {
            // As the step part's figure-5 problems: 128 synthetic rows (here drawn with seed 0), a Gaussian likelihood.
            if (Value(args, "--batch") is not null) throw new ArgumentException("option --batch: the figure-5 nets (--depth) take a batch of 128");
            batch = 128;
            manual_seed(0);
            (x, y) = (randn(batch, 16), randn(batch, 1));
            configs = StepConfigs.Build(() => PerfCommand.Figure5Net(d), new GaussianLikelihood(), requested, bothPaths: path == "preconditioner");
        }
        else
        {
            var data = DatasetCatalog.Load("fashion-mnist", new DataOptions());
            if (batch > data.TrainX.size(0)) throw new ArgumentException($"option --batch: {batch} is more than the {data.TrainX.size(0)} training images");
            x = data.TrainX.narrow(0, 0, batch).reshape(batch, -1).to_type(ScalarType.Float32);
            y = data.TrainY.narrow(0, 0, batch);
            configs = StepConfigs.Build(PerfCommand.Mlp, new CategoricalLikelihood(), requested, bothPaths: path == "preconditioner");
        }
        var config = configs.Single(c => c.Method == method && c.Path == path);
        foreach (var other in configs.Where(c => !ReferenceEquals(c, config))) other.Dispose();

        for (int i = 0; i < WarmUpSteps; i++)
        {
            using var scope = NewDisposeScope();
            config.Step(x, y);
        }
        long faults = MinorFaults();
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            config.Step(x, y);
        }
        double ms = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds / steps;
        Console.WriteLine($"{config.Label}{(depth is { } net ? $", figure-5 net of depth {net}" : "")}, batch {batch}, {threads} threads: {steps} steps, {ms:F2} ms per step, " +
                          $"{(MinorFaults() - faults) / (double)steps:F0} minor page faults per step");
        config.Dispose();
        return 0;
    }

    /// <summary>The process's minor page faults so far (field 10 of /proc/self/stat); 0 where there is no /proc.</summary>
    private static long MinorFaults()
    {
        try { return long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7]); }
        catch (IOException) { return 0; }
    }

    private static string? Value(string[] args, string name)
    {
        int at = Array.IndexOf(args, name);
        if (at < 0) return null;
        return at + 1 < args.Length && !args[at + 1].StartsWith("--", StringComparison.Ordinal)
            ? args[at + 1]
            : throw new ArgumentException($"option {name} needs a value");
    }

    private static int Positive(string[] args, string name, int fallback)
    {
        var text = Value(args, name);
        if (text is null) return fallback;
        return int.TryParse(text, out int n) && n > 0 ? n : throw new ArgumentException($"option {name}: expected a positive integer, got '{text}'");
    }
}
