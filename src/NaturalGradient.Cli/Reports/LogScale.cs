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

    /// <summary>Relabels an axis whose data were passed through log10.</summary>
    public static void Relabel(IAxis axis)
    {
        axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = y => Label(Math.Pow(10, y)),
        };
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
