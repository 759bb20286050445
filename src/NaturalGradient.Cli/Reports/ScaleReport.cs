using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NaturalGradient.Cli.Commands;
using NaturalGradient.Cli.Output;
using NaturalGradient.Training.Experiments.Scale;
using ScottPlot;

namespace NaturalGradient.Cli.Reports;

/// <summary>
/// scale.csv, scale.json, scale.md and the log-log figures time_vs_{depth,width}.png and memory_vs_{depth,width}.png
/// of <c>natgrad scale</c>, each written to a temporary file and renamed into place.
/// </summary>
internal static class ScaleReport
{
    private const int PlotWidth = 1200, PlotHeight = 620;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>What the report says about the run besides the points.</summary>
    public sealed record RunInfo(string CommandLine, ScaleCommand.Config Config);

    /// <summary>Columns of scale.csv.</summary>
    public static readonly string[] CsvColumns =
    {
        "sweep", "method", "depth", "width", "inputs", "parameters", "status", "median_ms", "p10_ms", "p90_ms", "timed_steps",
        "peak_mb", "observed_max_rss_mb", "predicted_curvature_mb", "ratio_to_sgd", "sgd_other_median_ms", "threads", "note",
    };

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The files <see cref="Write"/> creates for these points.</summary>
    public static IReadOnlyList<string> Files(IReadOnlyList<PointMeasurement> points)
    {
        var files = new List<string> { "scale.csv", "scale.json", "scale.md" };
        foreach (var sweep in Sweeps(points))
        {
            var name = sweep.ToString().ToLowerInvariant();
            files.Add($"time_vs_{name}.png");
            files.Add($"memory_vs_{name}.png");
        }
        return files;
    }

    public static void Write(string dir, IReadOnlyList<PointMeasurement> points, RunInfo info)
    {
        AtomicFile.Write(Path.Combine(dir, "scale.csv"), w => WriteCsv(w, points));
        AtomicFile.WriteText(Path.Combine(dir, "scale.json"), JsonSerializer.Serialize(Document(points, info), Json) + "\n");
        foreach (var sweep in Sweeps(points))
        {
            var mine = points.Where(p => p.Sweep == sweep).ToList();
            string name = sweep.ToString().ToLowerInvariant();
            Plot(Path.Combine(dir, $"time_vs_{name}.png"), mine, sweep, p => p.MedianMs, "median time of one step", "ms", info.Config);
            Plot(Path.Combine(dir, $"memory_vs_{name}.png"), mine, sweep, p => p.PeakMb, "peak resident memory", "MiB, whole process", info.Config);
        }
        AtomicFile.WriteText(Path.Combine(dir, "scale.md"), Markdown(points, info));
    }

    private static IEnumerable<SweepKind> Sweeps(IReadOnlyList<PointMeasurement> points) =>
        new[] { SweepKind.Depth, SweepKind.Width }.Where(s => points.Any(p => p.Sweep == s));

    // ---------------------------------------------------------------- CSV and JSON

    private static void WriteCsv(TextWriter w, IReadOnlyList<PointMeasurement> points)
    {
        w.WriteLine(string.Join(',', CsvColumns));
        foreach (var p in points)
            w.WriteLine(string.Join(',', Lower(p.Sweep), p.Method, I(p.Size.Depth), I(p.Size.Width), I(p.Size.Inputs), I(p.Size.Parameters),
                Quote(p.StatusText), R(p.MedianMs), R(p.P10Ms), R(p.P90Ms), p.TimedSteps > 0 ? I(p.TimedSteps) : "", R(p.PeakMb),
                R(p.ObservedMaxRssMb), R(p.PredictedCurvatureMb), R(p.RatioToSgd), R(p.SgdOtherMedianMs), p.Threads > 0 ? I(p.Threads) : "", Quote(p.Note)));
    }

    private static object Document(IReadOnlyList<PointMeasurement> points, RunInfo info)
    {
        var c = info.Config;
        var environment = new SortedDictionary<string, object?>(EnvironmentInfo.Collect().ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal)
        {
            ["torch_threads"] = c.Threads, // of the measurements (the parent's own setting does not matter)
            ["measurement"] = c.InProcess ? "in process (peak memory not isolated)" : "one child process per point",
        };
        return new
        {
            command = info.CommandLine,
            created_utc = DateTime.UtcNow.ToString("O", Inv),
            options = new
            {
                methods = c.Methods, depths = c.Depths, width = c.Width, widths = c.Widths, depth = c.Depth, inputs = c.Inputs,
                batch_size = c.Probe.BatchSize, warmup = c.Probe.Warmup, repeats = c.Probe.Repeats, time_budget_ms = c.TimeBudgetMs,
                point_time_limit_s = c.PointLimit.TotalSeconds, memory_budget_mb = c.MemoryBudgetMb, threads = c.Threads,
                dtype = ScaleCommand.DtypeName(c.Probe.Dtype), fisher = c.Fisher, seed = c.Probe.Seed, quick = c.Quick, in_process = c.InProcess,
                settings = c.Probe.Settings with { Name = "(each method)" },
            },
            notes = c.Notes,
            environment,
            points = points.Select(p => new
            {
                sweep = Lower(p.Sweep), method = p.Method, depth = p.Size.Depth, width = p.Size.Width, inputs = p.Size.Inputs,
                outputs = p.Size.Outputs, parameters = p.Size.Parameters, status = p.StatusText, message = p.Message,
                median_ms = N(p.MedianMs), p10_ms = N(p.P10Ms), p90_ms = N(p.P90Ms), timed_steps = p.TimedSteps,
                peak_mb = N(p.PeakMb), observed_max_rss_mb = N(p.ObservedMaxRssMb), predicted_curvature_mb = p.PredictedCurvatureMb,
                ratio_to_sgd = N(p.RatioToSgd), sgd_other_median_ms = N(p.SgdOtherMedianMs), threads = p.Threads,
            }),
        };
    }

    // ---------------------------------------------------------------- figures

    private static void Plot(string path, IReadOnlyList<PointMeasurement> points, SweepKind sweep, Func<PointMeasurement, double> value,
        string quantity, string unit, ScaleCommand.Config c)
    {
        var plot = new Plot();
        var methods = points.Select(p => p.Method).Distinct().ToList();
        var allY = new List<double>();
        var allX = new List<double>();
        double X(PointMeasurement p) => Math.Log2(sweep == SweepKind.Depth ? p.Size.Depth : p.Size.Width);
        for (int i = 0; i < methods.Count; i++)
        {
            var mine = points.Where(p => p.Method == methods[i]).ToList();
            var shown = mine.Where(p => double.IsFinite(value(p)) && value(p) > 0).ToList();
            var color = new ScottPlot.Palettes.Category10().GetColor(i);
            var stop = mine.FirstOrDefault(p => p.Status != PointStatus.Measured);
            string legend = methods[i] + (stop is null ? "" : $" — {StopLabel(stop, sweep)}");
            allX.AddRange(mine.Select(X));
            if (shown.Count == 0)
            {
                // Keep the method in the legend even without a single point.
                var empty = plot.Add.Scatter(Array.Empty<double>(), Array.Empty<double>(), color);
                empty.LegendText = legend;
                continue;
            }
            var xs = shown.Select(X).ToArray();
            var ys = shown.Select(p => Math.Log10(value(p))).ToArray();
            allY.AddRange(ys);
            var s = plot.Add.Scatter(xs, ys, color);
            s.LegendText = legend;
            s.MarkerSize = 8;
            s.LineWidth = 2;
            // Points measured but over a budget (their figures are real): a hollow square on top of the line.
            var over = shown.Where(p => p.Status != PointStatus.Measured).ToList();
            if (over.Count > 0)
            {
                var m = plot.Add.Markers(over.Select(X).ToArray(), over.Select(p => Math.Log10(value(p))).ToArray(), MarkerShape.OpenSquare, 14, color);
                m.LegendText = "";
            }
        }
        plot.Axes.Bottom.TickGenerator = SizeTicks(points.Select(p => sweep == SweepKind.Depth ? p.Size.Depth : p.Size.Width).Distinct().Order());
        if (allX.Count > 0) plot.Axes.SetLimitsX(allX.Min() - 0.25, allX.Max() + 0.25);
        LogScale.Relabel(plot.Axes.Left, allY);
        var batch = $"batch {c.Probe.BatchSize}, {ScaleCommand.DtypeName(c.Probe.Dtype)}, {c.Threads} thread{(c.Threads == 1 ? "" : "s")}";
        plot.Title(sweep == SweepKind.Depth
            ? $"{Capitalise(quantity)} vs depth (layers of {c.Width} units; {batch})"
            : $"{Capitalise(quantity)} vs width ({c.Depth} hidden layers; {batch})", size: 14);
        plot.XLabel(sweep == SweepKind.Depth ? $"hidden layers of {c.Width} units (log scale)" : $"hidden units per layer, {c.Depth} layers (log scale)");
        plot.YLabel($"{quantity} ({unit}, log scale)");
        plot.ShowLegend(Edge.Right); // outside the data area: steep lines (exact, block) never hide behind it
        AtomicFile.WriteBytes(path, plot.GetImageBytes(PlotWidth, PlotHeight, ImageFormat.Png));
    }

    private static string StopLabel(PointMeasurement p, SweepKind sweep)
    {
        string at = sweep == SweepKind.Depth ? $"depth {p.Size.Depth}" : $"width {p.Size.Width}";
        return p.Status switch
        {
            PointStatus.Refused => $"refused at {at}",
            PointStatus.Skipped => p.StatusText,
            _ => $"{p.StatusText} at {at}",
        };
    }

    /// <summary>Ticks at the sizes themselves (1, 2, 4, … or 16, 32, …) on a log₂ axis.</summary>
    private static ScottPlot.ITickGenerator SizeTicks(IEnumerable<int> sizes)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var s in sizes) ticks.AddMajor(Math.Log2(s), s.ToString(Inv));
        return ticks;
    }

    // ---------------------------------------------------------------- Markdown

    private static string Markdown(IReadOnlyList<PointMeasurement> points, RunInfo info)
    {
        var c = info.Config;
        var env = EnvironmentInfo.Collect();
        var md = new StringBuilder();
        md.AppendLine("# Cost of one optimisation step vs model size").AppendLine();
        md.AppendLine($"Command: `{info.CommandLine}`").AppendLine();
        var where = c.InProcess ? "measured in one process (peak memory NOT isolated)" : "each point in its own child process; peak memory = the child's VmHWM";
        var plural = c.Threads == 1 ? "" : "s";
        var cpu = env.GetValueOrDefault("cpu_model") ?? "unknown";
        md.AppendLine(string.Create(Inv, $"Synthetic regression (x, y standard normal), tanh MLP, {c.Inputs} inputs → 1 output, batch {c.Probe.BatchSize}, {ScaleCommand.DtypeName(c.Probe.Dtype)}, {c.Fisher} Fisher, damping {c.Probe.Settings.Damping:G3}, no momentum, HF {c.Probe.Settings.HfMaxIterations} CG iterations."));
        md.AppendLine(string.Create(Inv, $"Each point: {c.Probe.Warmup} warm-up steps, then the median (p10–p90) of {c.Probe.Repeats} timed steps; {where}."));
        md.AppendLine(string.Create(Inv, $"Budgets: {c.TimeBudgetMs:0.#} ms per step (a point is stopped after {c.PointLimit.TotalSeconds:0.#} s), {c.MemoryBudgetMb:0.#} MiB resident."));
        md.AppendLine(string.Create(Inv, $"{c.Threads} torch thread{plural}; CPU {cpu} ({env["processor_count"]} logical); TorchSharp {env["torchsharp"]}; {env["os"]}."));
        md.AppendLine();
        md.AppendLine("Shared, noisy machine: read the ratios to SGD (measured in the same run, same size) rather than absolute times.");
        md.AppendLine("SGD, the reference, is timed first and again after the other methods (each in its own process); the tables use the faster of its two medians.").AppendLine();
        foreach (var note in c.Notes) md.AppendLine($"- Note: {note}");
        if (c.Notes.Count > 0) md.AppendLine();

        foreach (var sweep in Sweeps(points))
        {
            var mine = points.Where(p => p.Sweep == sweep).ToList();
            var methods = mine.Select(p => p.Method).Distinct().ToList();
            var sizes = mine.Select(p => p.Size).Distinct().OrderBy(s => s.Depth).ThenBy(s => s.Width).ToList();
            string n = sweep.ToString().ToLowerInvariant();
            string SizeCell(ModelSize s) => sweep == SweepKind.Depth ? $"{s.Depth} × {s.Width}" : $"{s.Width} (× {s.Depth})";
            md.AppendLine(sweep == SweepKind.Depth
                ? $"## Depth sweep (hidden layers of {c.Width} units)"
                : $"## Width sweep ({c.Depth} hidden layers)").AppendLine();

            md.AppendLine("Median step time in ms, and its ratio to one SGD step at the same size:").AppendLine();
            md.AppendLine($"| {(sweep == SweepKind.Depth ? "layers × units" : "units (× layers)")} | parameters | {string.Join(" | ", methods)} |");
            md.AppendLine($"|---|---:|{string.Concat(methods.Select(_ => "---:|"))}");
            foreach (var s in sizes)
            {
                var cells = methods.Select(m => mine.FirstOrDefault(p => p.Method == m && p.Size == s) is { } p ? TimeCell(p) : "");
                md.AppendLine($"| {SizeCell(s)} | {s.Parameters.ToString("N0", Inv)} | {string.Join(" | ", cells)} |");
            }
            md.AppendLine();
            md.AppendLine("Peak resident memory of the measuring process in MiB (child's VmHWM; in brackets the dense curvature's predicted size where it matters):").AppendLine();
            md.AppendLine($"| {(sweep == SweepKind.Depth ? "layers × units" : "units (× layers)")} | parameters | {string.Join(" | ", methods)} |");
            md.AppendLine($"|---|---:|{string.Concat(methods.Select(_ => "---:|"))}");
            foreach (var s in sizes)
            {
                var cells = methods.Select(m => mine.FirstOrDefault(p => p.Method == m && p.Size == s) is { } p ? MemoryCell(p) : "");
                md.AppendLine($"| {SizeCell(s)} | {s.Parameters.ToString("N0", Inv)} | {string.Join(" | ", cells)} |");
            }
            md.AppendLine();
            var notMeasured = mine.Where(p => p.Status is not (PointStatus.Measured or PointStatus.Skipped)).ToList();
            if (notMeasured.Count > 0)
            {
                md.AppendLine("Points not measured within budget (larger sizes of the same method are skipped):").AppendLine();
                foreach (var p in notMeasured) md.AppendLine($"- {p.Method} at {SizeCell(p.Size)}: {p.Note}");
                md.AppendLine();
            }
            md.AppendLine($"![time vs {n}](time_vs_{n}.png)").AppendLine();
            md.AppendLine($"![memory vs {n}](memory_vs_{n}.png)").AppendLine();
        }
        return md.ToString();
    }

    private static string TimeCell(PointMeasurement p)
    {
        if (!double.IsFinite(p.MedianMs)) return Short(p);
        var ratio = double.IsFinite(p.RatioToSgd) ? $" ({p.RatioToSgd.ToString(p.RatioToSgd < 10 ? "F1" : "F0", Inv)}×)" : "";
        var text = p.MedianMs.ToString(p.MedianMs < 10 ? "F2" : p.MedianMs < 100 ? "F1" : "F0", Inv) + ratio;
        return p.Status == PointStatus.Measured ? text : $"{text} {Short(p)}";
    }

    private static string MemoryCell(PointMeasurement p)
    {
        var predicted = p.PredictedCurvatureMb >= 10 ? $" [{p.PredictedCurvatureMb.ToString("F0", Inv)}]" : "";
        if (!double.IsFinite(p.PeakMb)) return Short(p) + predicted;
        var text = p.PeakMb.ToString("F0", Inv) + predicted;
        return p.Status == PointStatus.Measured ? text : $"{text} {Short(p)}";
    }

    /// <summary>A short marker for table cells; the full message is listed under the table.</summary>
    private static string Short(PointMeasurement p) => p.Status switch
    {
        PointStatus.Measured => "",
        PointStatus.Skipped => "–",
        _ => $"*{p.StatusText}*",
    };

    // ---------------------------------------------------------------- formatting

    private static string Lower(SweepKind s) => s.ToString().ToLowerInvariant();
    private static string I(long v) => v.ToString(Inv);
    private static string R(double v) => double.IsFinite(v) ? v.ToString("R", Inv) : "";
    private static double? N(double v) => double.IsFinite(v) ? v : null;
    private static string Quote(string s) => s.Length == 0 ? "" : "\"" + s.Replace("\"", "\"\"") + "\"";
    private static string Capitalise(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
