using NaturalGradient.Training.Experiments.Paths;
using ScottPlot;

namespace NaturalGradient.Cli.Commands;

/// <summary>paths.png: contours of the error surface over (b, w) with every method's path from every start (ScottPlot 5).</summary>
internal static class PathsPlot
{
    public const int Width = 1100, Height = 880;

    /// <summary>The seed's colours: Newton blue, natural gradient gray, Le Roux orange, gradient descent purple.</summary>
    public static Color ColorOf(PathMethod method) => method switch
    {
        PathMethod.Newton => Color.FromHex("#1f5fd1"),
        PathMethod.NaturalGradient => Color.FromHex("#6e6e6e"),
        PathMethod.CovarianceNaturalGradient => Color.FromHex("#f08c00"),
        PathMethod.GradientDescent => Color.FromHex("#8e24aa"),
        _ => Colors.Black,
    };

    public const int ContourCount = 24;

    /// <summary>About <paramref name="count"/> levels evenly spaced in log L over (lMin, lMax), two significant digits, distinct.</summary>
    internal static double[] Levels(double lMin, double lMax, int count)
    {
        double a = Math.Log10(Math.Max(lMin, 1e-300)), b = Math.Log10(Math.Max(lMax, 1e-300));
        return Enumerable.Range(1, count)
            .Select(k => Round2(Math.Pow(10, a + (b - a) * k / (count + 1))))
            .Where(v => v > lMin && v < lMax)
            .Distinct()
            .ToArray();
    }

    private static double Round2(double v)
    {
        if (!(v > 0) || !double.IsFinite(v)) return v;
        double scale = Math.Pow(10, Math.Floor(Math.Log10(v)) - 1);
        return Math.Round(v / scale) * scale;
    }

    public static byte[] RenderPng(PathsResult r)
    {
        using var plot = new Plot();
        plot.Font.Set("DejaVu Sans"); // falls back to ScottPlot's default font where it is missing
        var g = r.Grid;
        int nb = g.B.Length, nw = g.W.Length;

        // Contours of L at levels evenly spaced in log10 L (the loss spans two orders of magnitude between the
        // minima and the corners), rounded to two significant digits so that the line labels read as loss values.
        var coords = new Coordinates3d[nw, nb];
        double lMin = double.PositiveInfinity, lMax = double.NegativeInfinity;
        for (int i = 0; i < nb; i++)
            for (int j = 0; j < nw; j++)
            {
                double loss = g.Loss[i, j];
                coords[j, i] = new Coordinates3d(g.B[i], g.W[j], loss);
                lMin = Math.Min(lMin, loss);
                lMax = Math.Max(lMax, loss);
            }

        var contour = plot.Add.ContourLines(coords, ContourCount);
        contour.ContourLineLevels = Levels(lMin, lMax, ContourCount);
        contour.Update(coords);
        // One muted green for every contour, so that the four path colours stand out.
        contour.Colormap = null;
        contour.LineColor = Color.FromHex("#5a9e86");
        contour.LineWidth = 1;
        contour.LabelStyle.ForeColor = Color.FromHex("#2f6b56");
        contour.LabelStyle.FontSize = 11;

        // Paths: a line per method and start, with step markers alternating between two shades (every other step).
        foreach (var t in r.Trajectories)
        {
            var color = ColorOf(t.Method);
            double[] bs = t.Points.Select(p => p.B).ToArray(), ws = t.Points.Select(p => p.W).ToArray();
            var line = plot.Add.ScatterLine(bs, ws, color);
            line.LineWidth = 2.5f;
            if (t.Start.Name == r.Trajectories[0].Start.Name) line.LegendText = t.Method.DisplayName();
            var even = t.Points.Where(p => p.Step % 2 == 0).ToArray();
            var odd = t.Points.Where(p => p.Step % 2 == 1).ToArray();
            if (even.Length > 0)
                plot.Add.Markers(even.Select(p => p.B).ToArray(), even.Select(p => p.W).ToArray(), MarkerShape.FilledCircle, 5, color);
            if (odd.Length > 0)
                plot.Add.Markers(odd.Select(p => p.B).ToArray(), odd.Select(p => p.W).ToArray(), MarkerShape.FilledCircle, 5, color.Lighten(0.45));
            if (t.Stopped)
            {
                var end = t.Final;
                plot.Add.Marker(end.B, end.W, MarkerShape.Eks, 14, color);
            }
        }

        // Starts and the minima reached.
        foreach (var start in r.Trajectories.Select(t => t.Start).DistinctBy(s => s.Name))
        {
            plot.Add.Marker(start.Point.B, start.Point.W, MarkerShape.FilledSquare, 11, Colors.Black);
            var label = plot.Add.Text(start.Name, start.Point.B, start.Point.W);
            label.LabelFontSize = 20;
            label.LabelBold = true;
            label.LabelFontColor = Colors.Black;
            label.OffsetX = 8;
            label.OffsetY = -8;
            label.LabelAlignment = Alignment.LowerLeft;
        }
        var minima = r.Summaries.Select(m => m.Minimum)
            .Aggregate(new List<Vec2>(), (acc, m) => { if (!acc.Any(a => (a - m).Norm < 1e-4)) acc.Add(m); return acc; });
        var minMarkers = plot.Add.Markers(minima.Select(m => m.B).ToArray(), minima.Select(m => m.W).ToArray(), MarkerShape.FilledDiamond, 13, Colors.Red);
        minMarkers.LegendText = "local minimum reached";

        plot.Title($"Seed 001 Fig. 1: {r.Settings.Steps} steps from starts A and B; contours of the loss L(b, w)");
        plot.XLabel("b (bias)");
        plot.YLabel("w (tied weight)");
        plot.Axes.SetLimits(g.B[0], g.B[^1], g.W[0], g.W[^1]);
        var legend = plot.ShowLegend(Alignment.UpperLeft);
        legend.FontSize = 13;
        var note = plot.Add.Annotation(FormattableString.Invariant(
            $"x̂ = w·σ(w·x + b) − b, L = mean ½(x − x̂)², n = {r.Surface.Data.Count}, x ~ N(0, 1), seed {r.Settings.Seed}; L ∈ [{lMin:G3}, {lMax:G3}] on the grid"),
            Alignment.LowerRight);
        note.LabelBackgroundColor = Colors.White.WithAlpha(0.9);
        note.LabelBorderColor = Colors.Gray;
        note.LabelShadowColor = Colors.Transparent;
        note.LabelFontSize = 12;
        return plot.GetImageBytes(Width, Height, ImageFormat.Png);
    }
}
