using TorchSharp;

namespace NaturalGradient.Training.Experiments.Scale;

/// <summary>
/// The points of a scaling sweep and its budgets. A point whose predicted curvature memory exceeds the budget is
/// not launched; a method whose point exceeds a budget (or is refused, or fails) is not tried at larger sizes of the
/// same sweep — those points are recorded as <see cref="PointStatus.Skipped"/>.
/// </summary>
public sealed class ScalePlan
{
    /// <summary>The seed's depth sweep (figure 5): hidden layers of 20 units.</summary>
    public static readonly int[] DefaultDepths = { 1, 2, 4, 8, 16 };

    /// <summary>The width sweep: hidden units of 2 hidden layers.</summary>
    public static readonly int[] DefaultWidths = { 16, 32, 64, 128, 256, 512, 1024 };

    /// <summary>Depths of <c>--quick</c>.</summary>
    public static readonly int[] QuickDepths = { 1, 2, 4 };

    /// <summary>Widths of <c>--quick</c>.</summary>
    public static readonly int[] QuickWidths = { 16, 64, 256 };

    /// <param name="methods">Methods in the order they are measured.</param>
    /// <param name="memoryBudgetMb">Resident-memory budget per point, MiB (&gt; 0).</param>
    /// <param name="dtype">Parameter dtype: 4 bytes per value for float32, 8 for float64.</param>
    public ScalePlan(IReadOnlyList<string> methods, double memoryBudgetMb, torch.ScalarType dtype = torch.ScalarType.Float32)
    {
        ArgumentNullException.ThrowIfNull(methods);
        if (!(memoryBudgetMb > 0)) throw new ArgumentOutOfRangeException(nameof(memoryBudgetMb), memoryBudgetMb, "the memory budget must be > 0");
        Methods = methods;
        MemoryBudgetMb = memoryBudgetMb;
        Dtype = dtype;
        BytesPerValue = dtype switch
        {
            torch.ScalarType.Float32 => 4,
            torch.ScalarType.Float64 => 8,
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "dtype must be Float32 or Float64"),
        };
    }

    public IReadOnlyList<string> Methods { get; }
    public double MemoryBudgetMb { get; }
    public torch.ScalarType Dtype { get; }
    public int BytesPerValue { get; }

    /// <summary>The sizes of a depth sweep: <paramref name="depths"/> hidden layers of <paramref name="width"/> units.</summary>
    public static IReadOnlyList<ModelSize> DepthSweep(IEnumerable<int> depths, int width, int inputs, int outputs = 1) =>
        depths.Select(d => new ModelSize(d, width, inputs, outputs)).ToList();

    /// <summary>The sizes of a width sweep: <paramref name="depth"/> hidden layers of each of <paramref name="widths"/> units.</summary>
    public static IReadOnlyList<ModelSize> WidthSweep(IEnumerable<int> widths, int depth, int inputs, int outputs = 1) =>
        widths.Select(w => new ModelSize(depth, w, inputs, outputs)).ToList();

    /// <summary>
    /// Bytes that the method's dense curvature matrix alone needs: exact p² values (8·p² bytes in float64, 4·p² in
    /// float32), block Σ_l p_l²; 0 for the others, whose curvature is small next to the model (TENGraD m² per layer,
    /// K-FAC in'² + out², HF a few parameter-sized vectors).
    /// </summary>
    public double PredictedCurvatureBytes(string method, ModelSize size) => PredictedCurvatureBytes(method, size.LayerParameters(), BytesPerValue);

    /// <summary>
    /// <see cref="PredictedCurvatureBytes(string, ModelSize)"/> for any model, from its per-layer parameter counts p_l
    /// (weights and bias of each covered layer): exact (Σ p_l)², block Σ p_l², times <paramref name="bytesPerValue"/>.
    /// </summary>
    public static double PredictedCurvatureBytes(string method, IReadOnlyList<long> layerParameters, int bytesPerValue) => method switch
    {
        "exact" => Square(layerParameters.Sum()) * bytesPerValue,
        "block" => layerParameters.Sum(Square) * bytesPerValue,
        _ => 0,
    };

    /// <summary><see cref="PredictedCurvatureBytes(string, ModelSize)"/> in MiB.</summary>
    public double PredictedCurvatureMb(string method, ModelSize size) => PredictedCurvatureBytes(method, size) / (1024.0 * 1024.0);

    private static double Square(long x) => (double)x * x;

    /// <summary>
    /// Runs one sweep: for each method in order, <paramref name="measure"/> is called for each size still within
    /// budget, smallest first. Points predicted over the memory budget are recorded without being launched; after
    /// the first point that is not measured, the method's larger sizes are recorded as skipped.
    /// </summary>
    /// <param name="sweep">Which sweep the sizes form (recorded in every point).</param>
    /// <param name="sizes">Sizes in increasing order.</param>
    /// <param name="measure">Measures one point (in a child process, in the real command).</param>
    /// <param name="report">Called with every point as soon as it is known (progress lines).</param>
    /// <returns>Every (method, size) point, with <see cref="PointMeasurement.RatioToSgd"/> filled in.</returns>
    public List<PointMeasurement> Run(SweepKind sweep, IReadOnlyList<ModelSize> sizes, Func<string, ModelSize, PointMeasurement> measure,
        Action<PointMeasurement>? report = null)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        ArgumentNullException.ThrowIfNull(measure);
        var results = new List<PointMeasurement>();
        foreach (var method in Methods)
        {
            string? stoppedBecause = null;
            foreach (var size in sizes)
            {
                double predicted = PredictedCurvatureMb(method, size);
                PointMeasurement m;
                if (stoppedBecause is not null)
                    m = new PointMeasurement { Method = method, Sweep = sweep, Size = size, Status = PointStatus.Skipped, Message = stoppedBecause };
                else if (predicted > MemoryBudgetMb)
                    m = new PointMeasurement
                    {
                        Method = method, Sweep = sweep, Size = size, Status = PointStatus.OverMemoryBudget,
                        Message = FormattableString.Invariant(
                            $"predicted {predicted:F0} MiB for the dense curvature ({(Dtype == torch.ScalarType.Float64 ? "float64" : "float32")}) > budget {MemoryBudgetMb:F0} MiB: not launched"),
                    };
                else
                    m = measure(method, size) with { Sweep = sweep, Method = method, Size = size };
                m = m with { PredictedCurvatureMb = predicted };
                if (m.Status != PointStatus.Measured && stoppedBecause is null)
                    stoppedBecause = $"{m.StatusText} at {(sweep == SweepKind.Depth ? $"depth {size.Depth}" : $"width {size.Width}")}";
                results.Add(m);
                report?.Invoke(m);
            }
        }
        if (RetimeReference) Retime(results, measure, report);
        return WithRatios(results);
    }

    /// <summary>
    /// Whether <see cref="Run"/> times SGD, the reference of the ratios, a second time after the other methods and keeps
    /// the faster of its two medians at each size (a burst of load on a shared machine during one short SGD timing
    /// would otherwise scale every ratio at that size); default true.
    /// </summary>
    public bool RetimeReference { get; init; } = true;

    private static void Retime(List<PointMeasurement> results, Func<string, ModelSize, PointMeasurement> measure, Action<PointMeasurement>? report)
    {
        for (int i = 0; i < results.Count; i++)
        {
            var first = results[i];
            if (first.Method != "sgd" || first.Status != PointStatus.Measured) continue;
            var again = measure("sgd", first.Size) with { Sweep = first.Sweep, Method = "sgd", Size = first.Size, PredictedCurvatureMb = first.PredictedCurvatureMb };
            if (again.Status != PointStatus.Measured) continue;
            results[i] = again.MedianMs < first.MedianMs
                ? again with { SgdOtherMedianMs = first.MedianMs }
                : first with { SgdOtherMedianMs = again.MedianMs };
            report?.Invoke(results[i]);
        }
    }

    /// <summary>Adds each measured point's ratio to SGD's median step at the same size and sweep.</summary>
    public static List<PointMeasurement> WithRatios(IEnumerable<PointMeasurement> points)
    {
        var list = points.ToList();
        var sgd = list.Where(p => p.Method == "sgd" && p.Status == PointStatus.Measured)
            .GroupBy(p => (p.Sweep, p.Size)).ToDictionary(g => g.Key, g => g.First().MedianMs);
        return list.Select(p => p.Status == PointStatus.Measured && sgd.TryGetValue((p.Sweep, p.Size), out var s) && s > 0
            ? p with { RatioToSgd = p.MedianMs / s } : p).ToList();
    }
}
