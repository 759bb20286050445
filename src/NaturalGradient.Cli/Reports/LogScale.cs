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
            LabelFormatter = y => Math.Pow(10, y).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
        };
    }
}
