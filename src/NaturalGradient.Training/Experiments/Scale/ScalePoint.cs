using System.Text.Json;
using System.Text.Json.Serialization;

namespace NaturalGradient.Training.Experiments.Scale;

/// <summary>Which dimension a scaling sweep grows.</summary>
public enum SweepKind { Depth, Width }

/// <summary>One model size of a sweep: an MLP of <c>Depth</c> hidden layers of <c>Width</c> units (tanh), <c>Inputs</c> → <c>Outputs</c>.</summary>
public sealed record ModelSize(int Depth, int Width, int Inputs, int Outputs = 1)
{
    /// <summary>Hidden widths, input side first (<c>Depth</c> times <c>Width</c>).</summary>
    public int[] Hidden() => Enumerable.Repeat(Width, Depth).ToArray();

    /// <summary>Per-layer parameter counts p_l = out × (in + 1) of the MLP, input to output.</summary>
    public IReadOnlyList<long> LayerParameters()
    {
        var sizes = new List<int> { Inputs };
        sizes.AddRange(Hidden());
        sizes.Add(Outputs);
        return Enumerable.Range(0, sizes.Count - 1).Select(i => (long)sizes[i + 1] * (sizes[i] + 1)).ToList();
    }

    /// <summary>p = Σ p_l.</summary>
    public long Parameters => LayerParameters().Sum();
}

/// <summary>How a (method, size) point ended.</summary>
public enum PointStatus
{
    /// <summary>Timed: the medians and memory are valid.</summary>
    Measured,
    /// <summary>The median step exceeded the time budget, or the child ran past its wall-clock limit and was stopped.</summary>
    OverTimeBudget,
    /// <summary>The predicted curvature memory exceeded the budget (not launched), or the child's resident memory passed it (stopped).</summary>
    OverMemoryBudget,
    /// <summary>The method refused the model (e.g. an unsupported layer or setting); the message is the method's.</summary>
    Refused,
    /// <summary>The measurement failed unexpectedly (the child crashed or printed no result).</summary>
    Failed,
    /// <summary>Not tried: the method was over a budget (or refused) at a smaller size of the same sweep.</summary>
    Skipped,
}

/// <summary>The measurement of one optimisation step of one method at one size (times in ms, memory in MiB).</summary>
public sealed record PointMeasurement
{
    public required string Method { get; init; }
    public required SweepKind Sweep { get; init; }
    public required ModelSize Size { get; init; }
    public required PointStatus Status { get; init; }

    /// <summary>Why a point is not <see cref="PointStatus.Measured"/> (the method's own message for a refusal).</summary>
    public string? Message { get; init; }

    /// <summary>Median, 10th and 90th percentile of the timed steps.</summary>
    public double MedianMs { get; init; } = double.NaN;
    public double P10Ms { get; init; } = double.NaN;
    public double P90Ms { get; init; } = double.NaN;

    /// <summary>Timed steps behind the percentiles (after the warm-up steps).</summary>
    public int TimedSteps { get; init; }

    /// <summary>Peak resident set size of the measuring process (VmHWM), read after the timed steps.</summary>
    public double PeakMb { get; init; } = double.NaN;

    /// <summary>Largest resident set size of the child that the parent saw while polling (NaN in-process).</summary>
    public double ObservedMaxRssMb { get; init; } = double.NaN;

    /// <summary>Memory that the method's dense curvature alone needs (<see cref="ScalePlan.PredictedCurvatureMb"/>); 0 for the others.</summary>
    public double PredictedCurvatureMb { get; init; }

    /// <summary>Median step time divided by SGD's median at the same size in the same run.</summary>
    public double RatioToSgd { get; init; } = double.NaN;

    /// <summary>
    /// SGD only: the median of the other of its two timings at this size (the reference is timed first and again
    /// after the other methods; the point keeps the faster one, this is the slower). NaN otherwise.
    /// </summary>
    public double SgdOtherMedianMs { get; init; } = double.NaN;

    /// <summary>Torch intra-op threads of the measuring process.</summary>
    public int Threads { get; init; }

    /// <summary>"measured", "over time budget", "over memory budget", "refused", "failed" or "skipped".</summary>
    [JsonIgnore]
    public string StatusText => StatusName(Status);

    /// <summary>One line for tables: empty when measured, else e.g. "over time budget: median step 2400 ms &gt; 2000 ms" or "refused: …".</summary>
    [JsonIgnore]
    public string Note => Status == PointStatus.Measured ? "" : Message is { Length: > 0 } m ? $"{StatusText}: {m}" : StatusText;

    public static string StatusName(PointStatus status) => status switch
    {
        PointStatus.Measured => "measured",
        PointStatus.OverTimeBudget => "over time budget",
        PointStatus.OverMemoryBudget => "over memory budget",
        PointStatus.Refused => "refused",
        PointStatus.Failed => "failed",
        PointStatus.Skipped => "skipped",
        _ => status.ToString(),
    };

    private static readonly JsonSerializerOptions LineJson = new()
    {
        WriteIndented = false,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The point as one line of JSON (what <c>natgrad scale-point</c> prints).</summary>
    public string ToJsonLine() => JsonSerializer.Serialize(this, LineJson);

    /// <summary>Parses <see cref="ToJsonLine"/>'s output.</summary>
    /// <exception cref="FormatException">The text is not such a line.</exception>
    public static PointMeasurement FromJsonLine(string line)
    {
        try
        {
            return JsonSerializer.Deserialize<PointMeasurement>(line, LineJson) ?? throw new FormatException("empty measurement line");
        }
        catch (JsonException e)
        {
            throw new FormatException($"not a measurement line: {e.Message}", e);
        }
    }
}
