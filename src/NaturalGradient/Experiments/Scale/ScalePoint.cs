namespace NaturalGradient.Experiments.Scale;

/// <summary>Which dimension a scaling sweep grows.</summary>
public enum SweepKind { Depth, Width }

/// <summary>One model size of a sweep: <c>Depth</c> hidden layers of <c>Width</c> units.</summary>
public sealed record ModelSize(int Depth, int Width, int Inputs, int Outputs = 1)
{
    /// <summary>Per-layer parameter counts out × (in + 1) of the MLP, input to output.</summary>
    public IReadOnlyList<long> LayerParameters()
    {
        var sizes = new List<int> { Inputs };
        sizes.AddRange(Enumerable.Repeat(Width, Depth));
        sizes.Add(Outputs);
        return Enumerable.Range(0, sizes.Count - 1).Select(i => (long)sizes[i + 1] * (sizes[i] + 1)).ToList();
    }

    public long Parameters => LayerParameters().Sum();
}

/// <summary>How a (method, size) point ended.</summary>
public enum PointStatus { Measured, OverTimeBudget, OverMemoryBudget, Refused, Failed, Skipped }

/// <summary>The measurement of one optimisation step of one method at one size (times in ms, memory in MB).</summary>
public sealed record PointMeasurement
{
    public required string Method { get; init; }
    public required SweepKind Sweep { get; init; }
    public required ModelSize Size { get; init; }
    public required PointStatus Status { get; init; }
    public string? Message { get; init; }
    public double MedianMs { get; init; } = double.NaN;
    public double P10Ms { get; init; } = double.NaN;
    public double P90Ms { get; init; } = double.NaN;
    /// <summary>Peak resident set size of the measuring process (VmHWM).</summary>
    public double PeakMb { get; init; } = double.NaN;
    /// <summary>Median step time divided by SGD's at the same size in the same run.</summary>
    public double RatioToSgd { get; init; } = double.NaN;
}
