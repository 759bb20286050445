using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Output;
using NaturalGradient.Cli.Reports;
using NaturalGradient.Curvature;
using NaturalGradient.Training.Experiments.Compare;
using NaturalGradient.Training;
using NaturalGradient.Training.TensorBoard;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad compare</c>: several methods × a learning-rate grid × seeds (× batch sizes) on one data set and model,
/// each run cached under <c>--out/runs/&lt;key&gt;</c> so that a repeated command recomputes nothing; then plots,
/// CSV tables and report.md.
/// </summary>
internal static class CompareCommand
{
    public static Command Create(CliContext ctx)
    {
        var options = new CompareOptions(ctx.Catalog.Names);
        var command = new Command("compare",
            "Compare optimisers (learning-rate grid × seeds × batch sizes) on one data set and model; resumable; writes plots, CSVs and report.md");
        foreach (var option in options.All) command.Add(option);
        command.SetAction(parse => Execute(ctx, parse, options));
        return command;
    }

    private static int Execute(CliContext ctx, ParseResult parse, CompareOptions o)
    {
        o.RefuseNotRead(parse);
        var config = TrainBinder.Bind(parse, o.Train, DateTime.Now, checkMethodOptions: false);
        bool quick = parse.GetValue(o.Quick);
        var optimizers = parse.GetValue(o.Optimizers)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => s.ToLowerInvariant()).Distinct().ToList();
        if (optimizers.Count == 0) throw new UsageException("--optimizers: the list is empty");
        foreach (var name in optimizers.Where(n => !ctx.Catalog.Contains(n)))
            throw new UsageException($"--optimizers: '{name}' is not one of {string.Join(", ", ctx.Catalog.Names)}");
        var seeds = CompareOptions.Numbers(parse.GetValue(o.Seeds)!, "--seeds").Select(s => (long)s).ToList();
        if (quick) seeds = seeds.Take(1).ToList();
        var batchSizes = CompareOptions.Numbers(parse.GetValue(o.BatchSizes)!, "--batch-sizes").Select(b => (int)b).ToList();
        if (batchSizes.Any(b => b < 1)) throw new UsageException("--batch-sizes: batch sizes must be ≥ 1");
        var grid = CompareOptions.Grid(parse.GetValue(o.LrGrid), optimizers, quick);
        var criterion = CompareOptions.ParseSelect(parse.GetValue(o.Select)!);
        int epochs = quick && parse.GetResult(o.Train.Epochs) is not { Implicit: false } ? 5 : config.Trainer.Epochs;
        string outDir = parse.GetResult(o.Train.Out) is { Implicit: false } ? config.OutDir : Path.Combine("runs", $"compare-{Path.GetFileNameWithoutExtension(config.Data)}");

        var methodSettings = MethodSettings(parse, o.Train, optimizers, ctx.Out);
        TensorBoardLog.CheckFolder(config.TensorBoardDir);
        using var data = ctx.LoadData(config.Data, config.DataOptions);
        try { config.Model.ValidateFor(data.InputShape); }
        catch (ArgumentOutOfRangeException e) { throw new UsageException(TrainBinder.Describe(e, o.Train) + $" ('{config.Data}')"); }

        var cache = new RunCache(Path.Combine(outDir, "runs"));
        var specs = (from m in batchSizes from opt in optimizers from lr in grid[opt] from s in seeds select new CompareRunSpec(opt, lr, s, m)).ToList();
        ctx.Out.WriteLine($"compare: {optimizers.Count} methods, {specs.Count} runs ({epochs} epochs each) on {data.Name}, model {config.Model}; results in {outDir}");
        var results = new List<CompareRunResult>();
        int done = 0, computed = 0;
        foreach (var spec in specs)
        {
            ctx.Cancellation.ThrowIfCancellationRequested();
            var settings = methodSettings[spec.Optimizer] with { LearningRate = spec.LearningRate };
            var trainer = config.Trainer with { BatchSize = spec.BatchSize, Seed = spec.Seed, Epochs = epochs };
            string key = RunKey.For(Canonical(config, settings, trainer));
            var result = cache.TryLoad(key);
            bool cached = result is not null;
            using (var tensorBoard = TensorBoardLog.Open(config.TensorBoardDir is { } tbDir
                       ? Path.Combine(tbDir, TensorBoardLog.RunName(spec.Optimizer, spec.LearningRate, spec.Seed, spec.BatchSize)) : null))
            {
                if (result is null)
                {
                    result = CompareRunner.Run(spec, config.Model, settings, trainer, data, ctx.Catalog, ctx.Cancellation,
                        tensorBoard is null ? null : new TensorBoardProgress(tensorBoard));
                    cache.Save(key, result);
                    computed++;
                }
                else if (tensorBoard is not null)
                    TensorBoardLog.WriteCurve(tensorBoard, result.Curve);
            }
            results.Add(result);
            ctx.Out.WriteLine(FormattableString.Invariant(
                $"[{++done}/{specs.Count}] {spec.Optimizer,-8} lr={spec.LearningRate,-7:G4} seed={spec.Seed} m={spec.BatchSize,-4} {Describe(result)}{(cached ? "  (cached)" : "")}"));
        }

        var cells = CompareSummary.Cells(results);
        var best = CompareSummary.Best(cells, criterion);
        Directory.CreateDirectory(outDir);
        CompareTables.Write(outDir, results, cells, best, criterion);
        ComparePlots.Write(outDir, cells, best, batchSizes);
        var report = CompareReport.Render(new CompareReport.Context(
            Data: data.Name, Model: config.Model.ToString(), Epochs: epochs, Seeds: seeds, BatchSizes: batchSizes, Criterion: criterion,
            MethodSettings: methodSettings, Command: "natgrad " + string.Join(' ', parse.Tokens.Select(t => t.Value)),
            Grid: grid), cells, best);
        AtomicFile.WriteText(Path.Combine(outDir, "report.md"), report);
        ctx.Out.WriteLine($"compare: {computed} runs computed, {specs.Count - computed} cached; wrote report.md, runs.csv, curves.csv, compare.json and plots to {outDir}");
        return ExitCodes.Success;
    }

    /// <summary>
    /// Each compared method's settings (its defaults with the given options on top). A given option that no compared
    /// method reads is an error; one that only some read gets a one-line note.
    /// </summary>
    private static Dictionary<string, OptimizerSettings> MethodSettings(ParseResult parse, TrainOptions o, IReadOnlyList<string> optimizers, TextWriter output)
    {
        bool tensorBoard = SettingsBinder.Given(parse, o.TensorBoard);
        var settings = optimizers.ToDictionary(m => m, m => SettingsBinder.Bind(parse, o, m) with { ReportPredictedKl = tensorBoard });
        var unused = optimizers.SelectMany(m => SettingsBinder.NotApplicable(parse, o, settings[m]).Select(option => (option, m)))
            .GroupBy(x => x.option, x => x.m);
        foreach (var g in unused)
        {
            if (g.Count() == optimizers.Count)
                throw new UsageException($"{g.Key} does not apply to any compared method ({string.Join(", ", optimizers)})");
            output.WriteLine($"note: {g.Key} does not apply to {string.Join(", ", g)} (used by the others)");
        }
        foreach (var s in settings.Values)
        {
            try { s.Validate(); }
            catch (ArgumentOutOfRangeException e) { throw new UsageException(TrainBinder.Describe(e, o)); }
        }
        return settings;
    }

    private static string Describe(CompareRunResult r) => r.Status switch
    {
        RunStatus.Finished => string.Create(CultureInfo.InvariantCulture,
            $"train {r.FinalTrainLoss:G4}  test {r.FinalTestLoss:G4}{(r.FinalTestAccuracy is { } a ? $"  acc {a:P1}" : "")}  {r.WallSeconds:F1}s"),
        RunStatus.Diverged => "diverged: " + r.Message,
        _ => "refused: " + r.Message,
    };

    /// <summary>Every resolved setting of a run, in a fixed order: the input of its cache key.</summary>
    private static string Canonical(TrainConfig c, OptimizerSettings settings, TrainerOptions trainer) => string.Join('\n',
        "data=" + c.Data,
        "dataOptions=" + (c.DataOptions with { IgnoreColumns = Array.Empty<string>() }) + ";ignore=" + string.Join(',', c.DataOptions.IgnoreColumns),
        "model=" + c.Model,
        "optimizer=" + settings,
        "trainer=" + trainer,
        "version=1");
}
