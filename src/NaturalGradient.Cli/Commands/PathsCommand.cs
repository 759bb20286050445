using System.CommandLine;
using NaturalGradient.Cli.Parsing;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad paths</c>: seed 001 Figure 1, the paths of Newton, Amari's natural gradient, Le Roux's natural gradient
/// and gradient descent on the error surface of a one-hidden-unit tied-weight auto-encoder (docs/PATHS.md).
/// Writes paths.png, paths.csv and paths.md to <c>--out</c>.
/// </summary>
public static class PathsCommand
{
    /// <summary>Grid points per axis with <c>--quick</c> (at most).</summary>
    public const int QuickGrid = 40;

    /// <summary>
    /// The <c>paths</c> command. Bad option values throw <see cref="UsageException"/> from the action (one-line
    /// errors in natgrad); parse errors of numbers name the option ("--steps: 'x' is not an integer").
    /// A summary goes to the invocation's output writer (Console.Out when none is configured).
    /// </summary>
    public static Command Create()
    {
        var outDir = new Option<string>("--out")
        {
            Description = "Output folder for paths.png, paths.csv and paths.md (created if missing)",
            Required = true,
            HelpName = "dir",
        };
        var steps = CliOptions.Int("--steps", "Steps of every method from every start", PathsSettings.DefaultSteps);
        var seed = CliOptions.Int("--seed", "Seed of the data sample (100 draws of N(0, 1))", PathsSettings.DefaultSeed);
        var grid = CliOptions.Int("--grid", "Grid points per axis of the error surface", PathsSettings.DefaultGrid);
        var quick = new Option<bool>("--quick") { Description = $"Coarse surface ({QuickGrid}×{QuickGrid} grid at most): finishes in seconds" };

        var command = new Command("paths", "Seed 001 Figure 1: paths of Newton, natural gradient, Le Roux and gradient descent on a one-unit auto-encoder's error surface (paths.png, paths.csv, paths.md)");
        command.Add(outDir);
        command.Add(steps);
        command.Add(seed);
        command.Add(grid);
        command.Add(quick);
        command.SetAction(parse =>
        {
            var settings = new PathsSettings(
                parse.GetValue(outDir) ?? throw new UsageException("--out is required"),
                parse.GetValue(steps), parse.GetValue(seed), parse.GetValue(grid), parse.GetValue(quick));
            settings.Validate();
            var output = parse.InvocationConfiguration?.Output ?? Console.Out;
            var result = PathsExperiment.Run(settings);
            PathsReport.WriteConsoleSummary(output, result);
            return ExitCodes.Success;
        });
        return command;
    }
}

/// <summary>The options of <c>natgrad paths</c>.</summary>
internal sealed record PathsSettings(string OutDir, int Steps, int Seed, int Grid, bool Quick)
{
    public const int DefaultSteps = 100, DefaultSeed = 0, DefaultGrid = 200;
    public const int MaxSteps = 100_000, MinGrid = 10, MaxGrid = 2000;

    /// <summary>Grid points per axis actually used.</summary>
    public int EffectiveGrid => Quick ? Math.Min(Grid, PathsCommand.QuickGrid) : Grid;

    /// <exception cref="UsageException">A value out of range, or --out names a file.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutDir)) throw new UsageException("--out must name a folder");
        if (File.Exists(OutDir)) throw new UsageException($"--out: '{OutDir}' is a file, not a folder");
        if (Steps < 1 || Steps > MaxSteps) throw new UsageException($"--steps must be in [1, {MaxSteps}], got {Steps}");
        if (Seed < 0) throw new UsageException($"--seed must be ≥ 0, got {Seed}");
        if (Grid < MinGrid || Grid > MaxGrid) throw new UsageException($"--grid must be in [{MinGrid}, {MaxGrid}], got {Grid}");
    }
}
