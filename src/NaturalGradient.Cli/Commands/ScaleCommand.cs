using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Output;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Cli.Reports;
using NaturalGradient.Experiments.Scale;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad scale</c> (seed 000 figure 5): time and peak memory of one optimisation step vs depth (hidden layers of
/// 20 units) and vs width, each point measured in its own child process, with time and memory budgets.
/// </summary>
internal static class ScaleCommand
{
    public static Command Create(CliContext ctx)
    {
        var methods = CliOptions.Text("--methods", "Comma-separated methods", "sgd,exact,block,tengrad,kfac,hf", helpName: "a,b");
        var depths = CliOptions.Text("--depths", "Depth sweep: numbers of hidden layers (of --width units)", "1,2,4,8,16", helpName: "d,d");
        var width = CliOptions.Int("--width", "Hidden units per layer in the depth sweep", 20);
        var widths = CliOptions.Text("--widths", "Width sweep: hidden units (with --depth layers)", "16,32,64,128,256,512,1024", helpName: "w,w");
        var depth = CliOptions.Int("--depth", "Hidden layers in the width sweep", 2);
        var inputs = CliOptions.Int("--inputs", "Input features of the synthetic regression data", 16);
        var batch = CliOptions.Int("--batch-size", "Examples per step", 128);
        var warmup = CliOptions.Int("--warmup", "Untimed steps before timing", 3);
        var repeats = CliOptions.Int("--repeats", "Timed steps per point", 10);
        var timeBudget = CliOptions.Double("--time-budget-ms", "Per-step time budget: a point is stopped after (warmup + repeats) × this (plus start-up)", 2000);
        var memoryBudget = CliOptions.Double("--memory-budget-mb", "Resident memory budget per point", 4000);
        var threads = CliOptions.Int("--threads", "Torch threads in each measurement", 1);
        var fisher = CliOptions.Text("--fisher", "Fisher of the natural-gradient methods: empirical, mc or exact", "empirical", v => CliChoices.Fisher(v));
        var quick = new Option<bool>("--quick") { Description = "Quick mode: depths 1,2,4, widths 16,64,256, 2 repeats" };
        var inProcess = new Option<bool>("--in-process") { Description = "Measure in this process (no memory isolation; for tests)", Hidden = true };
        var outDir = CliOptions.Text("--out", "Output folder", "runs/scale", helpName: "dir");
        var command = new Command("scale", "Time and peak memory of one optimisation step vs model depth and width (seed 000 figure 5)");
        foreach (var o in new Option[] { methods, depths, width, widths, depth, inputs, batch, warmup, repeats, timeBudget, memoryBudget, threads, fisher, quick, inProcess, outDir })
            command.Add(o);
        command.SetAction(parse =>
        {
            bool q = parse.GetValue(quick);
            var names = parse.GetValue(methods)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => s.ToLowerInvariant()).ToList();
            foreach (var n in names.Where(n => !ctx.Catalog.Contains(n)))
                throw new UsageException($"--methods: '{n}' is not one of {string.Join(", ", ctx.Catalog.Names)}");
            var depthList = q ? new List<int> { 1, 2, 4 } : Ints(parse.GetValue(depths)!, "--depths");
            var widthList = q ? new List<int> { 16, 64, 256 } : Ints(parse.GetValue(widths)!, "--widths");
            int reps = q ? 2 : Positive(parse.GetValue(repeats), "--repeats"), warm = Math.Max(0, parse.GetValue(warmup));
            int m = Positive(parse.GetValue(batch), "--batch-size"), inp = Positive(parse.GetValue(inputs), "--inputs");
            double budgetMs = parse.GetValue(timeBudget), budgetMb = parse.GetValue(memoryBudget);
            if (!(budgetMs > 0)) throw new UsageException($"--time-budget-ms must be > 0, got {budgetMs}");
            if (!(budgetMb > 0)) throw new UsageException($"--memory-budget-mb must be > 0, got {budgetMb}");
            var fisherKind = CliChoices.Fisher(parse.GetValue(fisher)!);
            string dir = parse.GetValue(outDir)!;
            Directory.CreateDirectory(dir);

            var extra = new[] { "--batch-size", m.ToString(), "--warmup", warm.ToString(), "--repeats", reps.ToString(),
                "--threads", parse.GetValue(threads).ToString(), "--fisher", parse.GetValue(fisher)! };
            var limit = TimeSpan.FromMilliseconds(budgetMs * (warm + reps) + 15_000);
            PointMeasurement Measure(string method, ModelSize size, SweepKind sweep) => parse.GetValue(inProcess)
                ? StepCostProbe.Measure(method, size, m, warm, reps, ScalePointCommand.ScaleSettings(fisherKind)) with { Sweep = sweep }
                : PointProcess.Measure(method, size, sweep, extra, limit, budgetMb);
            PointMeasurement WithinTime(PointMeasurement p) => p.Status == PointStatus.Measured && p.MedianMs > budgetMs
                ? p with { Status = PointStatus.OverTimeBudget, Message = FormattableString.Invariant($"median step {p.MedianMs:F0} ms > budget {budgetMs:F0} ms") }
                : p;

            var plan = new ScalePlan(names, budgetMb);
            void Report(PointMeasurement p) => ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{p.Sweep.ToString().ToLowerInvariant(),-5} sweep: depth {p.Size.Depth,2} width {p.Size.Width,4} ({p.Size.Parameters,8} params) {p.Method,-8} ") +
                (p.Status == PointStatus.Measured
                    ? string.Create(CultureInfo.InvariantCulture, $"median {p.MedianMs,9:F2} ms  peak {p.PeakMb,7:F0} MB")
                    : $"{p.Status}: {p.Message}"));
            ctx.Out.WriteLine($"scale: methods {string.Join(", ", names)}; batch {m}; {reps} timed steps after {warm} warm-up; one process per point");
            var points = plan.Run(SweepKind.Depth, depthList.Select(d => new ModelSize(d, parse.GetValue(width), inp)).ToList(),
                (method, size) => WithinTime(Measure(method, size, SweepKind.Depth)), Report);
            points.AddRange(plan.Run(SweepKind.Width, widthList.Select(w => new ModelSize(parse.GetValue(depth), w, inp)).ToList(),
                (method, size) => WithinTime(Measure(method, size, SweepKind.Width)), Report));
            ScaleReport.Write(dir, points, "natgrad " + string.Join(' ', parse.Tokens.Select(t => t.Value)), m);
            ctx.Out.WriteLine($"scale: wrote scale.csv, scale.json, scale.md and plots to {dir}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static int Positive(int v, string option) => v >= 1 ? v : throw new UsageException($"{option} must be ≥ 1, got {v}");

    private static List<int> Ints(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new UsageException($"{option}: the list is empty");
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 1
            ? v : throw new UsageException($"{option}: '{p}' is not a positive integer")).ToList();
    }
}
