using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Training.Experiments.Scale;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Hidden <c>natgrad scale-point</c>: measures one (method, size) point and prints it as one JSON line
/// (<see cref="PointMeasurement.ToJsonLine"/>). Run by <c>natgrad scale</c> in a child process, so that each point's
/// peak memory is its own. Just before the first step it prints <see cref="TimingMarker"/>, from which the parent
/// counts the point's time limit (start-up and model building are not charged).
/// </summary>
internal static class ScalePointCommand
{
    public const string Name = "scale-point";

    /// <summary>The line printed when set-up is done and the (warm-up) steps begin.</summary>
    public const string TimingMarker = "# natgrad scale-point: timing";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create(CliContext ctx)
    {
        var method = CliOptions.Text("--method", "Method (a catalog name)", "sgd");
        var depth = CliOptions.Int("--depth", "Hidden layers", 2);
        var width = CliOptions.Int("--width", "Hidden units per layer", 20);
        var inputs = CliOptions.Int("--inputs", "Input features", 16);
        var outputs = CliOptions.Int("--outputs", "Regression outputs", 1);
        var batch = CliOptions.Int("--batch-size", "Examples per step", 128);
        var warmup = CliOptions.Int("--warmup", "Untimed steps", 3);
        var repeats = CliOptions.Int("--repeats", "Timed steps", 10);
        var threads = CliOptions.Int("--threads", "Torch intra-op threads", 1);
        var fisher = CliOptions.Text("--fisher", "Fisher: empirical, mc or exact", "empirical", v => CliChoices.Fisher(v));
        var dtype = CliOptions.Text("--dtype", "float32 or float64", "float32", v => CliChoices.Dtype(v));
        var seed = CliOptions.Long("--seed", "Seed of the weights and the synthetic data", 0);
        var command = new Command(Name, "Measure one optimisation step (run by natgrad scale in a child process)") { Hidden = true };
        foreach (var o in new Option[] { method, depth, width, inputs, outputs, batch, warmup, repeats, threads, fisher, dtype, seed }) command.Add(o);
        command.SetAction(parse =>
        {
            var name = parse.GetValue(method)!.Trim().ToLowerInvariant();
            if (!ctx.Catalog.Contains(name)) throw new UsageException($"--method: '{name}' is not one of {string.Join(", ", ctx.Catalog.Names)}");
            int Positive(Option<int> o) => parse.GetValue(o) is var v && v >= 1 ? v : throw new UsageException($"{o.Name} must be ≥ 1, got {v}");
            var size = new ModelSize(parse.GetValue(depth) is var d && d >= 0 ? d : throw new UsageException($"--depth must be ≥ 0, got {d}"),
                Positive(width), Positive(inputs), Positive(outputs));
            var options = new ProbeOptions
            {
                BatchSize = Positive(batch),
                Warmup = parse.GetValue(warmup) is var w && w >= 0 ? w : throw new UsageException($"--warmup must be ≥ 0, got {w}"),
                Repeats = Positive(repeats),
                Dtype = CliChoices.Dtype(parse.GetValue(dtype)!),
                Seed = parse.GetValue(seed),
                Settings = ProbeOptions.ScaleSettings(CliChoices.Fisher(parse.GetValue(fisher)!)),
            };
            TorchSharp.torch.set_num_threads(Positive(threads));
            var point = StepCostProbe.Measure(name, size, options, ctx.Catalog, () =>
            {
                ctx.Out.WriteLine(TimingMarker);
                ctx.Out.Flush();
            });
            ctx.Out.WriteLine(point.ToJsonLine());
            ctx.Out.Flush();
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The child's command line (after the executable) for one point.</summary>
    public static IReadOnlyList<string> Arguments(string method, ModelSize size, ProbeOptions options, int threads, string fisher) => new[]
    {
        Name, "--method", method,
        "--depth", size.Depth.ToString(Inv), "--width", size.Width.ToString(Inv),
        "--inputs", size.Inputs.ToString(Inv), "--outputs", size.Outputs.ToString(Inv),
        "--batch-size", options.BatchSize.ToString(Inv), "--warmup", options.Warmup.ToString(Inv), "--repeats", options.Repeats.ToString(Inv),
        "--threads", threads.ToString(Inv), "--fisher", fisher,
        "--dtype", options.Dtype == TorchSharp.torch.ScalarType.Float64 ? "float64" : "float32",
        "--seed", options.Seed.ToString(Inv),
    };
}
