namespace NaturalGradient.Experiments.Scale;

/// <summary>
/// The points of a scaling sweep and its budgets. A method whose point exceeds a budget (or is refused) is not
/// tried at larger sizes of the same sweep; a point whose predicted memory exceeds the budget is not launched.
/// </summary>
public sealed class ScalePlan
{
    public ScalePlan(IReadOnlyList<string> methods, double memoryBudgetMb, int bytesPerValue = 4)
    {
        Methods = methods;
        MemoryBudgetMb = memoryBudgetMb;
        BytesPerValue = bytesPerValue;
    }

    public IReadOnlyList<string> Methods { get; }
    public double MemoryBudgetMb { get; }
    public int BytesPerValue { get; }

    /// <summary>
    /// Memory the method's curvature alone needs (MB): exact p², block Σ p_l² values (the dense matrices);
    /// 0 for the others, whose curvature is small next to the model.
    /// </summary>
    public double PredictedCurvatureMb(string method, ModelSize size) => method switch
    {
        "exact" => Square(size.Parameters) * BytesPerValue / 1e6,
        "block" => size.LayerParameters().Sum(p => Square(p)) * BytesPerValue / 1e6,
        _ => 0,
    };

    private static double Square(long x) => (double)x * x;

    /// <summary>Runs the sweep: <paramref name="measure"/> is called for each point still within budget, in size order.</summary>
    public List<PointMeasurement> Run(SweepKind sweep, IReadOnlyList<ModelSize> sizes, Func<string, ModelSize, PointMeasurement> measure,
        Action<PointMeasurement>? report = null)
    {
        var results = new List<PointMeasurement>();
        foreach (var method in Methods)
        {
            string? stoppedBecause = null;
            foreach (var size in sizes)
            {
                PointMeasurement m;
                if (stoppedBecause is not null)
                    m = new PointMeasurement { Method = method, Sweep = sweep, Size = size, Status = PointStatus.Skipped, Message = stoppedBecause };
                else if (PredictedCurvatureMb(method, size) > MemoryBudgetMb)
                    m = new PointMeasurement
                    {
                        Method = method, Sweep = sweep, Size = size, Status = PointStatus.OverMemoryBudget,
                        Message = FormattableString.Invariant($"predicted {PredictedCurvatureMb(method, size):F0} MB of curvature > budget {MemoryBudgetMb:F0} MB: not launched"),
                    };
                else
                    m = measure(method, size) with { Sweep = sweep };
                if (m.Status is not (PointStatus.Measured or PointStatus.Skipped) && stoppedBecause is null)
                    stoppedBecause = $"stopped after {m.Status} at depth {size.Depth}, width {size.Width}";
                results.Add(m);
                report?.Invoke(m);
            }
        }
        return WithRatios(results);
    }

    /// <summary>Adds each point's ratio to SGD's median step at the same size.</summary>
    public static List<PointMeasurement> WithRatios(List<PointMeasurement> points)
    {
        var sgd = points.Where(p => p.Method == "sgd" && p.Status == PointStatus.Measured).ToDictionary(p => (p.Sweep, p.Size), p => p.MedianMs);
        return points.Select(p => p.Status == PointStatus.Measured && sgd.TryGetValue((p.Sweep, p.Size), out var s) && s > 0
            ? p with { RatioToSgd = p.MedianMs / s } : p).ToList();
    }
}
