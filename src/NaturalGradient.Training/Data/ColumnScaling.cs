using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Data;

/// <summary>
/// Per-column standardisation x ↦ (x − mean) / scale, fitted on a training split. A constant column gets
/// scale 1 (it is only centred), so nothing is divided by zero.
/// </summary>
public sealed class ColumnScaling
{
    /// <summary>Relative size below which a column's deviation counts as zero.</summary>
    private const double ConstantTolerance = 1e-12;

    /// <summary>Scaling with the given per-column statistics.</summary>
    public ColumnScaling(IReadOnlyList<double> mean, IReadOnlyList<double> scale)
    {
        if (mean.Count != scale.Count) throw new ArgumentException($"{mean.Count} means but {scale.Count} scales");
        Mean = mean.ToArray();
        Scale = scale.ToArray();
    }

    /// <summary>Column means of the rows the scaling was fitted on.</summary>
    public IReadOnlyList<double> Mean { get; }

    /// <summary>Column standard deviations (population, divisor m) of those rows; 1 for constant columns.</summary>
    public IReadOnlyList<double> Scale { get; }

    /// <summary>Fits means and deviations on the given rows (each row has the same length).</summary>
    public static ColumnScaling Fit(IReadOnlyList<double[]> rows)
    {
        if (rows.Count == 0) throw new ArgumentException("cannot fit a scaling on zero rows", nameof(rows));
        int d = rows[0].Length;
        var mean = new double[d];
        var scale = new double[d];
        foreach (var row in rows)
            for (int j = 0; j < d; j++) mean[j] += row[j];
        for (int j = 0; j < d; j++) mean[j] /= rows.Count;
        foreach (var row in rows)
            for (int j = 0; j < d; j++) scale[j] += (row[j] - mean[j]) * (row[j] - mean[j]);
        for (int j = 0; j < d; j++)
        {
            double std = Math.Sqrt(scale[j] / rows.Count);
            scale[j] = std <= ConstantTolerance * Math.Max(1.0, Math.Abs(mean[j])) ? 1.0 : std;
        }
        return new ColumnScaling(mean, scale);
    }

    /// <summary>Standardises rows in place.</summary>
    public void ApplyInPlace(IEnumerable<double[]> rows)
    {
        foreach (var row in rows)
            for (int j = 0; j < row.Length; j++) row[j] = (row[j] - Mean[j]) / Scale[j];
    }

    /// <summary>Maps standardised values (m × d, any float dtype) back to the data's units; the result belongs to the caller.</summary>
    public Tensor Unapply(Tensor standardized)
    {
        using var scope = NewDisposeScope();
        var mean = tensor(Mean.ToArray(), dtype: standardized.dtype, device: standardized.device);
        var scale = tensor(Scale.ToArray(), dtype: standardized.dtype, device: standardized.device);
        return (standardized * scale + mean).MoveToOuterDisposeScope();
    }
}
