using System.Globalization;
using System.Text;
using NaturalGradient.Cli.Output;
using NaturalGradient.Experiments.Scale;
using ScottPlot;

namespace NaturalGradient.Cli.Reports;

/// <summary>scale.csv, scale.json, scale.md and the four log-log figures of <c>natgrad scale</c>.</summary>
internal static class ScaleReport
{
    private static string F(double v, string f = "R") => double.IsFinite(v) ? v.ToString(f, CultureInfo.InvariantCulture) : "";

    public static void Write(string dir, IReadOnlyList<PointMeasurement> points, string command, int batch)
    {
        AtomicFile.Write(Path.Combine(dir, "scale.csv"), w =>
        {
            w.WriteLine("sweep,method,depth,width,parameters,status,median_ms,p10_ms,p90_ms,peak_mb,ratio_to_sgd,message");
            foreach (var p in points)
                w.WriteLine(string.Join(',', p.Sweep.ToString().ToLowerInvariant(), p.Method, p.Size.Depth, p.Size.Width, p.Size.Parameters, p.Status,
                    F(p.MedianMs), F(p.P10Ms), F(p.P90Ms), F(p.PeakMb), F(p.RatioToSgd), "\"" + (p.Message ?? "").Replace("\"", "'") + "\""));
        });
        AtomicFile.WriteText(Path.Combine(dir, "scale.json"), Experiments.Compare.RunCache.Serialize(new
        {
            command, batch, environment = EnvironmentInfo.Collect(), points,
        }));
        foreach (var sweep in new[] { SweepKind.Depth, SweepKind.Width })
        {
            var mine = points.Where(p => p.Sweep == sweep).ToList();
            if (mine.Count == 0) continue;
            string name = sweep.ToString().ToLowerInvariant();
            Plot(Path.Combine(dir, $"time_vs_{name}.png"), mine, sweep, p => p.MedianMs, "median time of one step (ms)", batch);
            Plot(Path.Combine(dir, $"memory_vs_{name}.png"), mine, sweep, p => p.PeakMb, "peak resident memory (MB)", batch);
        }
        AtomicFile.WriteText(Path.Combine(dir, "scale.md"), Markdown(points, command, batch));
    }

    private static void Plot(string path, IReadOnlyList<PointMeasurement> points, SweepKind sweep, Func<PointMeasurement, double> value, string label, int batch)
    {
        var plot = new Plot();
        var methods = points.Select(p => p.Method).Distinct().ToList();
        var allY = new List<double>();
        for (int i = 0; i < methods.Count; i++)
        {
            var ok = points.Where(p => p.Method == methods[i] && p.Status == PointStatus.Measured).ToList();
            if (ok.Count == 0) continue;
            var xs = ok.Select(p => Math.Log2(sweep == SweepKind.Depth ? p.Size.Depth : p.Size.Width)).ToArray();
            var ys = ok.Select(p => Math.Log10(Math.Max(value(p), 1e-6))).ToArray();
            allY.AddRange(ys);
            var s = plot.Add.Scatter(xs, ys, new ScottPlot.Palettes.Category10().GetColor(i));
            s.LegendText = methods[i];
            s.MarkerSize = 7;
            s.LineWidth = 2;
        }
        LogScale.RelabelBase2(plot.Axes.Bottom);
        LogScale.Relabel(plot.Axes.Left, allY);
        plot.Title(sweep == SweepKind.Depth
            ? $"{label} vs depth (hidden layers of {points[0].Size.Width} units, batch {batch})"
            : $"{label} vs width ({points[0].Size.Depth} hidden layers, batch {batch})");
        plot.XLabel(sweep == SweepKind.Depth ? "hidden layers (log scale)" : "hidden units per layer (log scale)");
        plot.YLabel(label + ", log scale");
        plot.ShowLegend(Alignment.UpperLeft);
        var tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 560);
        File.Move(tmp, path, overwrite: true);
    }

    private static string Markdown(IReadOnlyList<PointMeasurement> points, string command, int batch)
    {
        var md = new StringBuilder();
        md.AppendLine("# Cost of one optimisation step vs model size").AppendLine();
        md.AppendLine($"Command: `{command}` (batch {batch}; each point in its own process; medians of timed steps after warm-up;");
        md.AppendLine("shared, noisy machine: read the ratios to SGD, measured in the same run, rather than absolute times).").AppendLine();
        foreach (var sweep in new[] { SweepKind.Depth, SweepKind.Width })
        {
            var mine = points.Where(p => p.Sweep == sweep).ToList();
            if (mine.Count == 0) continue;
            md.AppendLine($"## {sweep} sweep").AppendLine();
            md.AppendLine("| method | depth | width | parameters | median step (ms) | step / SGD step | peak memory (MB) | note |");
            md.AppendLine("|---|---|---|---|---|---|---|---|");
            foreach (var p in mine)
                md.AppendLine($"| {p.Method} | {p.Size.Depth} | {p.Size.Width} | {p.Size.Parameters} | {F(p.MedianMs, "F2")} | {F(p.RatioToSgd, "F1")} | {F(p.PeakMb, "F0")} | " +
                              (p.Status == PointStatus.Measured ? "" : $"{p.Status}: {p.Message}") + " |");
            md.AppendLine();
            string n = sweep.ToString().ToLowerInvariant();
            md.AppendLine($"![time vs {n}](time_vs_{n}.png) ![memory vs {n}](memory_vs_{n}.png)").AppendLine();
        }
        return md.ToString();
    }
}
