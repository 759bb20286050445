using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Experiments.Scale;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Hidden <c>natgrad scale-point</c>: measures one (method, size) point and prints it as one JSON line. Run by
/// <c>natgrad scale</c> in a child process, so that each point's peak memory is its own.
/// </summary>
internal static class ScalePointCommand
{
    public static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public static Command Create(CliContext ctx)
    {
        var method = CliOptions.Text("--method", "method", "sgd");
        var depth = CliOptions.Int("--depth", "hidden layers", 2);
        var width = CliOptions.Int("--width", "hidden units", 20);
        var inputs = CliOptions.Int("--inputs", "inputs", 16);
        var batch = CliOptions.Int("--batch-size", "batch size", 128);
        var warmup = CliOptions.Int("--warmup", "untimed steps", 3);
        var repeats = CliOptions.Int("--repeats", "timed steps", 10);
        var threads = CliOptions.Int("--threads", "torch threads", 1);
        var fisher = CliOptions.Text("--fisher", "Fisher", "empirical", v => CliChoices.Fisher(v));
        var command = new Command("scale-point", "Measure one optimisation step (used by natgrad scale)") { Hidden = true };
        foreach (var o in new Option[] { method, depth, width, inputs, batch, warmup, repeats, threads, fisher }) command.Add(o);
        command.SetAction(parse =>
        {
            TorchSharp.torch.set_num_threads(parse.GetValue(threads));
            var settings = ScaleSettings(CliChoices.Fisher(parse.GetValue(fisher)!));
            var size = new ModelSize(parse.GetValue(depth), parse.GetValue(width), parse.GetValue(inputs));
            var m = StepCostProbe.Measure(parse.GetValue(method)!, size, parse.GetValue(batch), parse.GetValue(warmup), parse.GetValue(repeats), settings);
            ctx.Out.WriteLine(JsonSerializer.Serialize(m, Json));
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Settings of every timed method: seed 000's protocol (empirical Fisher by default, constant damping, no momentum).</summary>
    public static OptimizerSettings ScaleSettings(NaturalGradient.Fisher.FisherKind fisher) => new()
    {
        LearningRate = 0.01, Momentum = 0, Damping = 1e-2, Fisher = fisher, HfMaxIterations = 10, MaxExactParameters = int.MaxValue,
    };
}
