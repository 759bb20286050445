using ScottPlot;

namespace NaturalGradient.Cli.Reports;

/// <summary>Log-scale axes for ScottPlot 5: data are plotted as log10 and the ticks relabelled as powers of ten.</summary>
internal static class LogScale
{
    /// <summary>True when positive values span more than a factor of 5: a log axis then reads better.</summary>
    public static bool Suits(IEnumerable<double> values)
    {
        var v = values.Where(x => double.IsFinite(x) && x > 0).ToArray();
        return v.Length > 1 && v.Max() / v.Min() > 5;
    }

    public static double[] Apply(IEnumerable<double> values, bool log) =>
        values.Select(v => !log ? v : v > 0 ? Math.Log10(v) : double.NaN).ToArray();

    /// <summary>
    /// Relabels an axis whose data were passed through log10. Within <paramref name="low"/>..<paramref name="high"/>
    /// (log10 values) ticks go at evenly spaced round values (160, 180, 200, …) when the data span less than a decade,
    /// at 1, 2 and 5 × 10ᵏ when they span less than three, else at powers of ten.
    /// </summary>
    public static void Relabel(IAxis axis, double low = double.NaN, double high = double.NaN)
    {
        if (!double.IsFinite(low) || !double.IsFinite(high) || high < low)
        {
            axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = y => Label(Math.Pow(10, y)),
            };
            return;
        }
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        if (high - low < 1)
        {
            // Less than a decade: evenly spaced "nice" values (e.g. 160, 180, 200, …), 4 to 10 of them, at their log positions.
            // Ticks outside the visible range are not drawn: cover the data plus a margin.
            double margin = 0.2 * (high - low) + 0.01;
            double lo = Math.Pow(10, low - margin), hi = Math.Pow(10, high + margin);
            double step = NiceStep((Math.Pow(10, high) - Math.Pow(10, low)) / 8);
            for (double v = Math.Ceiling(lo / step) * step; v <= hi; v += step)
                if (v > 0) ticks.AddMajor(Math.Log10(v), Label(v));
            axis.TickGenerator = ticks;
            return;
        }
        // Up to three decades: 1, 2 and 5 × 10ᵏ; more: powers of ten.
        double[] mantissas = high - low < 3 ? new[] { 1.0, 2, 5 } : new[] { 1.0 };
        for (int k = (int)Math.Floor(low) - 1; k <= (int)Math.Ceiling(high) + 1; k++)
        {
            foreach (var mant in mantissas)
            {
                double v = Math.Log10(mant) + k;
                if (v >= low - 0.05 && v <= high + 0.05) ticks.AddMajor(v, Label(mant * Math.Pow(10, k)));
            }
            for (int minor = 2; minor <= 9; minor++)
            {
                double v = Math.Log10(minor) + k;
                if (v >= low && v <= high) ticks.AddMinor(v);
            }
        }
        axis.TickGenerator = ticks;
    }

    /// <summary>Relabels with ticks fitted to the finite values of <paramref name="logValues"/>.</summary>
    public static void Relabel(IAxis axis, IEnumerable<double> logValues)
    {
        var v = logValues.Where(double.IsFinite).ToArray();
        if (v.Length == 0) Relabel(axis); else Relabel(axis, v.Min(), v.Max());
    }

    /// <summary>Relabels an axis whose data were passed through log2 (sizes that double: 16, 32, 64, …).</summary>
    public static void RelabelBase2(IAxis axis)
    {
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            IntegerTicksOnly = true,
            LabelFormatter = x => Label(Math.Pow(2, x)),
        };
    }

    /// <summary>The 1-2-5 × 10ᵏ value nearest above <paramref name="raw"/>.</summary>
    private static double NiceStep(double raw)
    {
        if (!(raw > 0)) return 1;
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double f = raw / magnitude;
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude;
    }

    private static string Label(double v) =>
        v >= 1e-3 && v < 1e6 ? v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)
                             : v.ToString("G3", System.Globalization.CultureInfo.InvariantCulture);
}
