using System.CommandLine;
using System.Globalization;
using System.Text;
using NaturalGradient.Cli.Output;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Cli.Reports;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Experiments.OrderVariance;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using ScottPlot;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad order-variance</c> (seed 001 figure 3, after Erhan et al. 2010): how much each part of an online
/// training stream influences the learned function, for minibatch SGD and a natural-gradient method.
/// </summary>
internal static class OrderVarianceCommand
{
    public static Command Create(CliContext ctx)
    {
        var data = CliOptions.Text("--data", "Classification data set", "fashion-mnist", helpName: "name|path");
        var hidden = CliOptions.Text("--hidden", "Hidden layer widths of the MLP", "64", helpName: "widths");
        var methods = CliOptions.Text("--methods", "Comma-separated methods", "sgd,kfac", helpName: "a,b");
        var lrs = CliOptions.Text("--lr", "Learning rate per method, e.g. sgd=0.1,kfac=0.05", "sgd=0.1,kfac=0.05", helpName: "m=lr,...");
        var momentum = CliOptions.Text("--momentum", "Momentum per method", "sgd=0.9", helpName: "m=μ,...");
        var damping = CliOptions.Double("--damping", "Damping of the natural-gradient methods", 1e-2);
        var fisher = CliOptions.Text("--fisher", "Fisher: empirical, mc or exact", "mc", v => CliChoices.Fisher(v));
        var klClip = CliOptions.OptionalDouble("--kl-clip", "Bound on the predicted KL of a natural-gradient step [default: 0.001]");
        var stream = CliOptions.Int("--stream", "Examples in the online stream (its first half is resampled segment by segment)", 20_000);
        var segments = CliOptions.Int("--segments", "Segments of the first half", 10);
        var runs = CliOptions.Int("--runs", "Runs (resamplings) per segment", 4);
        var batch = CliOptions.Int("--batch-size", "Examples per step", 100);
        var holdout = CliOptions.Int("--holdout", "Held-out test examples whose outputs are compared", 2000);
        var seed = CliOptions.Long("--seed", "Seed of the stream, the replacements and the initial weights", 0);
        var threads = CliOptions.Int("--threads", "Torch threads", 1);
        var quick = new Option<bool>("--quick") { Description = "Quick mode: stream 6000, 5 segments, 3 runs" };
        var outDir = CliOptions.Text("--out", "Output folder", "runs/order-variance", helpName: "dir");
        var command = new Command("order-variance", "Seed 001 figure 3: variance of the learned function when one segment of the training stream is resampled");
        foreach (var o in new Option[] { data, hidden, methods, lrs, momentum, damping, fisher, klClip, stream, segments, runs, batch, holdout, seed, threads, quick, outDir })
            command.Add(o);
        command.SetAction(parse =>
        {
            bool q = parse.GetValue(quick);
            int streamLength = q ? 6000 : parse.GetValue(stream), segmentCount = q ? 5 : parse.GetValue(segments), runCount = q ? 3 : parse.GetValue(runs);
            if (runCount < 2) throw new UsageException($"--runs must be ≥ 2 (a variance needs two runs), got {runCount}");
            int m = parse.GetValue(batch);
            if (m < 1) throw new UsageException($"--batch-size must be ≥ 1, got {m}");
            var names = parse.GetValue(methods)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => s.ToLowerInvariant()).ToList();
            foreach (var n in names.Where(n => !ctx.Catalog.Contains(n)))
                throw new UsageException($"--methods: '{n}' is not one of {string.Join(", ", ctx.Catalog.Names)}");
            var lrMap = Map(parse.GetValue(lrs)!, "--lr");
            var momentumMap = Map(parse.GetValue(momentum)!, "--momentum");
            TorchSharp.torch.set_num_threads(Math.Max(1, parse.GetValue(threads)));
            long s = parse.GetValue(seed);
            string dir = parse.GetValue(outDir)!;
            var model = new ModelSpec { Hidden = ModelSpecParser.ParseHidden(parse.GetValue(hidden)!) };

            using var dataset = ctx.LoadData(parse.GetValue(data)!, new DataOptions { Seed = s });
            if (dataset.Task != TaskKind.Classification) throw new UsageException($"--data: '{dataset.Name}' is not a classification data set");
            StreamPlan plan;
            try { plan = new StreamPlan((int)dataset.TrainCount, streamLength, segmentCount, s); }
            catch (ArgumentOutOfRangeException e) { throw new UsageException("--stream: " + e.Message.Split('\n')[0].Replace($" (Parameter '{e.ParamName}')", "")); }
            var runner = new OrderVarianceRunner(dataset, model, m, parse.GetValue(holdout));
            ctx.Out.WriteLine($"order-variance: {names.Count} methods × {segmentCount} segments × {runCount} runs; stream {streamLength} ({plan.SegmentLength} per segment), batch {m}, model {model}");
            var results = new List<SegmentResult>();
            foreach (var name in names)
            {
                var settings = new OptimizerSettings
                {
                    Name = name, LearningRate = lrMap.GetValueOrDefault(name, 0.05), Momentum = momentumMap.GetValueOrDefault(name, 0),
                    Damping = parse.GetValue(damping), Fisher = CliChoices.Fisher(parse.GetValue(fisher)!),
                    KlClip = name is "sgd" or "adam" ? null : parse.GetValue(klClip) ?? 1e-3, InverseUpdatePeriod = 10,
                    // The bound is on the predicted KL of the step, with factors every step: the settings of the
                    // recorded figure (docs/REPRODUCTION.md), kept when the library's defaults became cheaper.
                    KlClipForm = NaturalGradient.Optim.KlClipForm.StepQuadraticForm, FactorUpdatePeriod = 1,
                };
                try { settings.Validate(); }
                catch (ArgumentOutOfRangeException e) { throw new UsageException($"{name}: {e.Message.Split('\n')[0]}"); }
                for (int k = 0; k < segmentCount; k++)
                {
                    var r = runner.RunSegment(settings, plan, k, runCount, s);
                    results.Add(r);
                    ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{name,-8} segment {k + 1,2}: output variance {r.Variance:E3}  test accuracy {r.TestAccuracy.Average():P1}"));
                }
            }
            Directory.CreateDirectory(dir);
            Write(dir, results, "natgrad " + string.Join(' ', parse.Tokens.Select(t => t.Value)), plan, runCount);
            ctx.Out.WriteLine($"order-variance: wrote variance.png, variance.csv, runs.csv, variance.md to {dir}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Dictionary<string, double> Map(string text, string option) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(part =>
        {
            var kv = part.Split('=', 2);
            if (kv.Length != 2 || !double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new UsageException($"{option}: '{part}' is not of the form method=number");
            return (kv[0].Trim().ToLowerInvariant(), v);
        }).ToDictionary(p => p.Item1, p => p.v);

    private static string F(double v, string f = "R") => v.ToString(f, CultureInfo.InvariantCulture);

    private static void Write(string dir, IReadOnlyList<SegmentResult> results, string command, StreamPlan plan, int runs)
    {
        AtomicFile.Write(Path.Combine(dir, "variance.csv"), w =>
        {
            w.WriteLine("method,segment,variance,mean_test_accuracy,mean_test_loss");
            foreach (var r in results) w.WriteLine($"{r.Method},{r.Segment},{F(r.Variance)},{F(r.TestAccuracy.Average())},{F(r.TestLoss.Average())}");
        });
        AtomicFile.Write(Path.Combine(dir, "runs.csv"), w =>
        {
            w.WriteLine("method,segment,run,test_loss,test_accuracy");
            foreach (var r in results)
                for (int i = 0; i < r.TestLoss.Count; i++) w.WriteLine($"{r.Method},{r.Segment},{i},{F(r.TestLoss[i])},{F(r.TestAccuracy[i])}");
        });
        var plot = new Plot();
        var methods = results.Select(r => r.Method).Distinct().ToList();
        for (int i = 0; i < methods.Count; i++)
        {
            var mine = results.Where(r => r.Method == methods[i]).OrderBy(r => r.Segment).ToList();
            var line = plot.Add.Scatter(mine.Select(r => (double)r.Segment).ToArray(), mine.Select(r => Math.Log10(r.Variance)).ToArray(),
                new ScottPlot.Palettes.Category10().GetColor(i));
            line.LegendText = methods[i];
            line.MarkerSize = 8;
            line.LineWidth = 2;
        }
        LogScale.Relabel(plot.Axes.Left, results.Select(r => Math.Log10(r.Variance)));
        plot.Title($"Influence of each stream segment on the final function ({runs} resamplings per segment)");
        plot.XLabel($"resampled segment of the stream's first half ({plan.SegmentLength} examples each; 1 = earliest)");
        plot.YLabel("variance of output probabilities on held-out data (log scale)");
        plot.ShowLegend(Alignment.UpperRight);
        AtomicFile.WriteBytes(Path.Combine(dir, "variance.png"), plot.GetImageBytes(900, 560, ImageFormat.Png));

        var md = new StringBuilder();
        md.AppendLine("# Order variance (seed 001 figure 3, reduced)").AppendLine();
        md.AppendLine($"Command: `{command}`").AppendLine();
        md.AppendLine("| method | " + string.Join(" | ", Enumerable.Range(1, plan.Segments).Select(k => $"seg {k}")) + " | first / last | mean test accuracy |");
        md.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", plan.Segments + 2)));
        foreach (var mth in methods)
        {
            var mine = results.Where(r => r.Method == mth).OrderBy(r => r.Segment).ToList();
            md.AppendLine($"| {mth} | " + string.Join(" | ", mine.Select(r => F(r.Variance, "E2"))) +
                          $" | {F(mine[0].Variance / mine[^1].Variance, "F2")} | {F(mine.Average(r => r.TestAccuracy.Average()) * 100, "F1")} % |");
        }
        md.AppendLine();
        if (methods.Count >= 2)
        {
            var a = results.Where(r => r.Method == methods[0]).Average(r => r.Variance);
            foreach (var other in methods.Skip(1))
                md.AppendLine($"Mean variance {other} / {methods[0]}: {F(results.Where(r => r.Method == other).Average(r => r.Variance) / a, "F3")}.");
        }
        md.AppendLine().AppendLine("![variance](variance.png)");
        AtomicFile.WriteText(Path.Combine(dir, "variance.md"), md.ToString());
    }
}
