using System.Globalization;

namespace NaturalGradient.Training;

/// <summary>Kinds of per-epoch learning-rate schedules.</summary>
public enum LrScheduleKind
{
    /// <summary>Constant learning rate.</summary>
    None,
    /// <summary>lr · γ^e after e completed epochs.</summary>
    Exponential,
    /// <summary>lr · γ^⌊e / StepEpochs⌋ after e completed epochs.</summary>
    Step,
}

/// <summary>
/// A per-epoch learning-rate decay. Text form (see <see cref="Parse"/>): <c>none</c>, <c>exp:GAMMA</c>,
/// <c>step:EPOCHS:GAMMA</c>.
/// </summary>
public sealed record LrSchedule
{
    /// <summary>A constant learning rate.</summary>
    public static LrSchedule None { get; } = new();

    /// <summary>Schedule kind; default <see cref="LrScheduleKind.None"/>.</summary>
    public LrScheduleKind Kind { get; init; } = LrScheduleKind.None;

    /// <summary>Decay factor γ in (0, 1] per epoch (exponential) or per step of the staircase; default 1.</summary>
    public double Gamma { get; init; } = 1.0;

    /// <summary>Epochs per staircase step (<see cref="LrScheduleKind.Step"/>), ≥ 1; default 1.</summary>
    public int StepEpochs { get; init; } = 1;

    /// <summary>Exponential decay by <paramref name="gamma"/> per epoch.</summary>
    public static LrSchedule Exponential(double gamma) => new() { Kind = LrScheduleKind.Exponential, Gamma = gamma };

    /// <summary>Multiply by <paramref name="gamma"/> every <paramref name="epochs"/> epochs.</summary>
    public static LrSchedule Step(int epochs, double gamma) => new() { Kind = LrScheduleKind.Step, Gamma = gamma, StepEpochs = epochs };

    /// <summary>The factor applied to the base learning rate after <paramref name="completedEpochs"/> epochs.</summary>
    public double Factor(int completedEpochs) => Kind switch
    {
        LrScheduleKind.Exponential => Math.Pow(Gamma, completedEpochs),
        LrScheduleKind.Step => Math.Pow(Gamma, completedEpochs / StepEpochs),
        _ => 1.0,
    };

    /// <summary>Checks γ and the step length.</summary>
    /// <exception cref="ArgumentOutOfRangeException">γ outside (0, 1] or StepEpochs &lt; 1.</exception>
    public void Validate()
    {
        if (Kind == LrScheduleKind.None) return;
        if (!(Gamma > 0 && Gamma <= 1))
            throw new ArgumentOutOfRangeException(nameof(Gamma), Gamma, $"{nameof(Gamma)} must be in (0, 1], got {Gamma.ToString(CultureInfo.InvariantCulture)}");
        if (StepEpochs < 1)
            throw new ArgumentOutOfRangeException(nameof(StepEpochs), StepEpochs, $"{nameof(StepEpochs)} must be ≥ 1, got {StepEpochs}");
    }

    /// <summary>Parses <c>none</c>, <c>exp:GAMMA</c> or <c>step:EPOCHS:GAMMA</c> (invariant culture).</summary>
    /// <exception cref="FormatException">Text of another form, or γ / EPOCHS out of range.</exception>
    public static LrSchedule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().ToLowerInvariant().Split(':');
        const NumberStyles Num = NumberStyles.Float;
        var inv = CultureInfo.InvariantCulture;
        LrSchedule? result = parts switch
        {
            ["none"] => None,
            ["exp", var g] when double.TryParse(g, Num, inv, out var gamma) => Exponential(gamma),
            ["step", var e, var g] when int.TryParse(e, NumberStyles.None, inv, out var epochs)
                && double.TryParse(g, Num, inv, out var gamma) => Step(epochs, gamma),
            _ => null,
        };
        if (result is null)
            throw new FormatException($"'{text}' is not none, exp:GAMMA or step:EPOCHS:GAMMA");
        try { result.Validate(); }
        catch (ArgumentOutOfRangeException) { throw new FormatException($"'{text}': GAMMA must be in (0, 1] and EPOCHS ≥ 1"); }
        return result;
    }

    /// <summary>The text form accepted by <see cref="Parse"/>.</summary>
    public override string ToString() => Kind switch
    {
        LrScheduleKind.Exponential => FormattableString.Invariant($"exp:{Gamma}"),
        LrScheduleKind.Step => FormattableString.Invariant($"step:{StepEpochs}:{Gamma}"),
        _ => "none",
    };
}
