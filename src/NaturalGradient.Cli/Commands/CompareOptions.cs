using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Training.Experiments.Compare;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Options of <c>natgrad compare</c>: the <c>train</c> options it shares (they give the base configuration) plus the
/// comparison's own. The <c>train</c> options compare does not read (<see cref="NotRead"/>) stay registered but hidden,
/// so that giving one is refused with what to use instead rather than rejected as unknown or silently ignored.
/// </summary>
internal sealed class CompareOptions
{
    public CompareOptions(IReadOnlyList<string> optimizerNames)
    {
        Train = new TrainOptions(optimizerNames);
        NotRead = new (Option, string)[]
        {
            (Train.Optimizer, "compare takes --optimizers"),
            (Train.Lr, "compare takes learning rates from --lr-grid"),
            (Train.Seed, "compare takes --seeds"),
            (Train.BatchSize, "compare takes --batch-sizes"),
            (Train.Resume, "compare resumes by itself: repeat the command with the same --out (finished runs are cached)"),
            (Train.CheckpointEvery, "compare writes no checkpoints; it caches each finished run under --out/runs, and a repeated command computes only the rest"),
            (Train.Force, "compare reuses the finished runs in --out; to recompute them give another --out or delete its runs folder"),
            (Train.DiagnosticsEvery, "compare records no approximation diagnostics; use natgrad train --diagnostics-every N"),
            (Train.KfacDistribution, "compare trains in one process; the K-FAC work distribution applies to natgrad train under mpirun"),
            (Train.FactorSync, "compare trains in one process; factor synchronisation applies to natgrad train under mpirun"),
        };
        foreach (var (option, _) in NotRead) option.Hidden = true;
        Train.Data.Description = "Data set: weather, weather-class, wine, boston, fashion-mnist, or the path of a CSV file (then --target is needed)";
        Train.Out.Description = "Output folder [default: runs/compare-<data>]";
        Train.TensorBoard.Description = "Also write TensorBoard event files into this folder, one sub-folder per run";
    }

    public TrainOptions Train { get; }

    /// <summary>The <c>train</c> options compare does not read, each with what compare takes instead.</summary>
    public IReadOnlyList<(Option Option, string Instead)> NotRead { get; }

    /// <summary>Refuses the first given option of <see cref="NotRead"/> (in command-line order) before any work.</summary>
    /// <exception cref="UsageException">"--lr: compare takes learning rates from --lr-grid".</exception>
    public void RefuseNotRead(ParseResult parse)
    {
        var tokens = parse.Tokens.Select(t => t.Value).ToList();
        var first = NotRead.Where(x => parse.GetResult(x.Option) is { Implicit: false })
            .OrderBy(x => tokens.FindIndex(t => t == x.Option.Name || x.Option.Aliases.Contains(t)))
            .FirstOrDefault();
        if (first.Option is not null) throw new UsageException($"{first.Option.Name}: {first.Instead}");
    }

    public Option<string> Optimizers { get; } = CliOptions.Text("--optimizers", "Comma-separated methods to compare", "sgd,adam,tengrad,kfac",
        helpName: "a,b,c");
    public Option<string?> LrGrid { get; } = new("--lr-grid")
    {
        Description = "Learning rates to try: 'a,b,c' for every method, or 'sgd=a,b;kfac=c,d' per method " +
                      "[default: sgd/adam 0.3,0.1,0.03,0.01,0.003; natural gradient 1,0.3,0.1,0.03]",
        HelpName = "grid",
    };
    public Option<string> Seeds { get; } = CliOptions.Text("--seeds", "Comma-separated seeds (initial weights, batch order, sampling)", "0,1,2", helpName: "s,s");
    public Option<string> BatchSizes { get; } = CliOptions.Text("--batch-sizes", "Comma-separated batch sizes (a sweep when several)", "128", helpName: "m,m");
    public Option<string> Select { get; } = CliOptions.Text("--select", "Best learning rate by: train-loss, test-loss or test-accuracy", "train-loss",
        helpName: "criterion");
    public Option<bool> Quick { get; } = new("--quick") { Description = "Quick mode: 5 epochs (unless --epochs is given), one seed, 2 learning rates per method" };

    public IEnumerable<Option> All => Train.All.Concat(new Option[] { Optimizers, LrGrid, Seeds, BatchSizes, Select, Quick });

    public static SelectionCriterion ParseSelect(string text) => text.Trim().ToLowerInvariant() switch
    {
        "train-loss" => SelectionCriterion.TrainLoss,
        "test-loss" => SelectionCriterion.TestLoss,
        "test-accuracy" => SelectionCriterion.TestAccuracy,
        _ => throw new UsageException($"--select: '{text}' is not one of train-loss, test-loss, test-accuracy"),
    };

    /// <summary>Parses "1,2,3" into numbers, naming <paramref name="option"/> on error.</summary>
    public static List<double> Numbers(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new UsageException($"{option}: the list is empty");
        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v : throw new UsageException($"{option}: '{p}' is not a number")).ToList();
    }

    /// <summary>The learning-rate grid of each method.</summary>
    public static Dictionary<string, List<double>> Grid(string? text, IReadOnlyList<string> optimizers, bool quick)
    {
        var grid = optimizers.ToDictionary(o => o, o => o is "sgd" or "adam"
            ? new List<double> { 0.3, 0.1, 0.03, 0.01, 0.003 } : new List<double> { 1, 0.3, 0.1, 0.03 });
        if (!string.IsNullOrWhiteSpace(text))
        {
            if (!text.Contains('='))
                foreach (var o in optimizers) grid[o] = Numbers(text, "--lr-grid");
            else
                foreach (var part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    var kv = part.Split('=', 2);
                    var name = kv[0].Trim().ToLowerInvariant();
                    if (kv.Length != 2 || !grid.ContainsKey(name))
                        throw new UsageException($"--lr-grid: '{part}' does not name one of the compared methods ({string.Join(", ", optimizers)})");
                    grid[name] = Numbers(kv[1], "--lr-grid");
                }
        }
        foreach (var (name, lrs) in grid)
        {
            if (lrs.Any(lr => !(lr > 0) || double.IsInfinity(lr)))
                throw new UsageException($"--lr-grid: learning rates must be finite numbers > 0 ({name})");
            if (quick && lrs.Count > 2) grid[name] = lrs.OrderBy(x => x).Skip((lrs.Count - 2) / 2).Take(2).ToList();
        }
        return grid;
    }
}
