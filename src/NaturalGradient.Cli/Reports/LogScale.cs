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
    /// (log10 values) ticks go at 1, 1.5, 2, 3, …, 8 × 10ᵏ when the data span less than a decade, at 1, 2 and 5 × 10ᵏ when
    /// they span less than three, else at powers of ten.
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
        // Less than a decade: enough labelled ticks to read values (150, 200, 300, …); up to three decades 1-2-5; else powers of ten.
        double[] mantissas = high - low < 1 ? new[] { 1.0, 1.5, 2, 3, 4, 5, 6, 7, 8 } : high - low < 3 ? new[] { 1.0, 2, 5 } : new[] { 1.0 };
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

    private static string Label(double v) =>
        v >= 1e-3 && v < 1e6 ? v.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)
                             : v.ToString("G3", System.Globalization.CultureInfo.InvariantCulture);
}
