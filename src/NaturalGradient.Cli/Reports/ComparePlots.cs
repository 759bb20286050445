using NaturalGradient.Cli.Output;
using NaturalGradient.Training.Experiments.Compare;
using ScottPlot;
using GridCell = NaturalGradient.Training.Experiments.Compare.GridCell;

namespace NaturalGradient.Cli.Reports;

/// <summary>
/// The comparison's figures: loss vs optimisation steps and vs wall-clock time (each method at its best learning
/// rate; mean over seeds, min–max band), the learning-rate grid, and (for a sweep) final loss vs batch size.
/// </summary>
internal static class ComparePlots
{
    private const int Width = 900, Height = 560;

    public static void Write(string outDir, IReadOnlyList<GridCell> cells, IReadOnlyList<GridCell> best, IReadOnlyList<int> batchSizes)
    {
        foreach (var m in batchSizes)
        {
            string suffix = batchSizes.Count > 1 ? $"_m{m}" : "";
            var bestHere = best.Where(c => c.BatchSize == m).ToList();
            Curves(Path.Combine(outDir, $"loss_vs_steps{suffix}.png"), bestHere, byTime: false, m);
            Curves(Path.Combine(outDir, $"loss_vs_time{suffix}.png"), bestHere, byTime: true, m);
            Grid(Path.Combine(outDir, $"grid{suffix}.png"), cells.Where(c => c.BatchSize == m).ToList(), m);
        }
        if (batchSizes.Count > 1) BatchSizes(Path.Combine(outDir, "batch_size.png"), best);
    }

    private static void Curves(string path, IReadOnlyList<GridCell> best, bool byTime, int batch)
    {
        var plot = new Plot();
        var allLosses = best.SelectMany(c => c.Finished.SelectMany(r => r.Curve.Select(p => p.TrainLoss))).ToList();
        bool log = LogScale.Suits(allLosses);
        for (int i = 0; i < best.Count; i++)
        {
            var runs = best[i].Finished;
            int epochs = runs.Min(r => r.Curve.Count);
            var xs = Enumerable.Range(0, epochs).Select(e => byTime ? runs.Average(r => r.Curve[e].ElapsedSeconds) : runs[0].Curve[e].Steps).Select(x => (double)x).ToArray();
            var mean = LogScale.Apply(Enumerable.Range(0, epochs).Select(e => runs.Average(r => r.Curve[e].TrainLoss)), log);
            var lo = LogScale.Apply(Enumerable.Range(0, epochs).Select(e => runs.Min(r => r.Curve[e].TrainLoss)), log);
            var hi = LogScale.Apply(Enumerable.Range(0, epochs).Select(e => runs.Max(r => r.Curve[e].TrainLoss)), log);
            var color = Palette(i);
            if (runs.Count > 1)
            {
                var band = plot.Add.FillY(xs, lo, hi);
                band.FillStyle.Color = color.WithAlpha(0.2);
                band.LineStyle.Width = 0;
            }
            var line = plot.Add.ScatterLine(xs, mean, color);
            line.LineWidth = 2;
            line.LegendText = $"{best[i].Optimizer} (lr {best[i].LearningRate:G3})";
        }
        if (log) LogScale.Relabel(plot.Axes.Left, LogScale.Apply(allLosses, true));
        int seeds = best.Count == 0 ? 0 : best.Max(c => c.Finished.Count);
        plot.Title($"Training loss vs {(byTime ? "wall-clock time" : "optimisation steps")} (batch {batch}; mean{(seeds > 1 ? $" and min–max over {seeds} seeds" : "")})");
        plot.XLabel(byTime ? "wall-clock time (s, evaluations included)" : "optimisation steps");
        plot.YLabel("training loss (mean NLL, full training set)" + (log ? ", log scale" : ""));
        plot.ShowLegend(Alignment.UpperRight);
        Save(plot, path);
    }

    private static void Grid(string path, IReadOnlyList<GridCell> cells, int batch)
    {
        var plot = new Plot();
        var finals = cells.Where(c => c.AllFinished).Select(c => c.TrainLoss.Mean).ToList();
        bool log = LogScale.Suits(finals);
        var methods = cells.Select(c => c.Optimizer).Distinct().ToList();
        for (int i = 0; i < methods.Count; i++)
        {
            var mine = cells.Where(c => c.Optimizer == methods[i] && c.AllFinished).OrderBy(c => c.LearningRate).ToList();
            if (mine.Count == 0) continue;
            var line = plot.Add.Scatter(mine.Select(c => Math.Log10(c.LearningRate)).ToArray(), LogScale.Apply(mine.Select(c => c.TrainLoss.Mean), log), Palette(i));
            line.LegendText = methods[i];
            line.MarkerSize = 8;
        }
        LogScale.Relabel(plot.Axes.Bottom, cells.Select(c => Math.Log10(c.LearningRate)));
        if (log) LogScale.Relabel(plot.Axes.Left, LogScale.Apply(finals, true));
        plot.Title($"Learning-rate grid (batch {batch}): final training loss, mean over seeds; diverged settings omitted");
        plot.XLabel("learning rate (log scale)");
        plot.YLabel("final training loss" + (log ? " (log scale)" : ""));
        plot.ShowLegend(Alignment.UpperRight);
        Save(plot, path);
    }

    private static void BatchSizes(string path, IReadOnlyList<GridCell> best)
    {
        var plot = new Plot();
        var bestLosses = best.Select(c => c.TrainLoss.Mean).ToList();
        bool log = LogScale.Suits(bestLosses);
        var methods = best.Select(c => c.Optimizer).Distinct().ToList();
        for (int i = 0; i < methods.Count; i++)
        {
            var mine = best.Where(c => c.Optimizer == methods[i]).OrderBy(c => c.BatchSize).ToList();
            var line = plot.Add.Scatter(mine.Select(c => Math.Log2(c.BatchSize)).ToArray(), LogScale.Apply(mine.Select(c => c.TrainLoss.Mean), log), Palette(i));
            line.LegendText = methods[i];
            line.MarkerSize = 8;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            IntegerTicksOnly = true,
            LabelFormatter = x => Math.Pow(2, x).ToString("G4", System.Globalization.CultureInfo.InvariantCulture),
        };
        if (log) LogScale.Relabel(plot.Axes.Left, LogScale.Apply(bestLosses, true));
        plot.Title("Final training loss vs batch size (each method at its best learning rate, same epochs)");
        plot.XLabel("batch size (log₂ scale)");
        plot.YLabel("final training loss" + (log ? " (log scale)" : ""));
        plot.ShowLegend(Alignment.UpperRight);
        Save(plot, path);
    }

    private static Color Palette(int i) => new ScottPlot.Palettes.Category10().GetColor(i);

    private static void Save(Plot plot, string path)
    {
        AtomicFile.WriteBytes(path, plot.GetImageBytes(Width, Height, ImageFormat.Png));
    }
}
