using NaturalGradient.Cli.Output;
using NaturalGradient.Training;
using ScottPlot;

namespace NaturalGradient.Cli.Reports;

/// <summary>
/// approximation.png: per layer, the relative Frobenius error of the method's block (left axis, solid) and the cosine
/// between its direction and the exact block's (right axis, dashed) against the optimisation step.
/// </summary>
internal static class ApproximationPlot
{
    private const int Width = 900, Height = 560;

    public static void Write(string path, IReadOnlyList<StepMetrics> steps)
    {
        var plot = new Plot();
        var measured = steps.Where(s => s.Approximation is { Count: > 0 }).ToList();
        var layers = measured.SelectMany(s => s.Approximation!).Where(a => a.Measured).Select(a => a.Layer).Distinct().ToList();
        var right = plot.Axes.Right;
        for (int i = 0; i < layers.Count; i++)
        {
            var points = measured.Select(s => (Step: (double)s.Step, Row: s.Approximation!.FirstOrDefault(a => a.Layer == layers[i] && a.Measured)))
                .Where(p => p.Row is not null).ToList();
            var color = new ScottPlot.Palettes.Category10().GetColor(i);
            var error = plot.Add.Scatter(points.Select(p => p.Step).ToArray(), points.Select(p => p.Row!.RelativeFrobeniusError).ToArray(), color);
            error.LegendText = $"{layers[i]}: ‖B − M‖_F / ‖M‖_F";
            var cosine = plot.Add.Scatter(points.Select(p => p.Step).ToArray(), points.Select(p => p.Row!.DirectionCosine).ToArray(), color);
            cosine.LinePattern = LinePattern.Dashed;
            cosine.Axes.YAxis = right;
            cosine.LegendText = $"{layers[i]}: cos(Δ_approx, Δ_exact)";
        }
        plot.Title("Approximation against the exact block on the probe batch");
        plot.XLabel("optimisation step");
        plot.YLabel("relative Frobenius error (solid)");
        right.Label.Text = "direction cosine (dashed)";
        plot.ShowLegend(Alignment.UpperRight);
        AtomicFile.WriteBytes(path, plot.GetImageBytes(Width, Height, ImageFormat.Png));
    }
}
