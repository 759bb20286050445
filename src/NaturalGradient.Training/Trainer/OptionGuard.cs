using System.Globalization;

namespace NaturalGradient.Training;

/// <summary>
/// Range checks for option records. Each throws <see cref="ArgumentOutOfRangeException"/> whose parameter name is
/// the property name and whose message starts with it: "LearningRate must be &gt; 0, got -1".
/// </summary>
internal static class OptionGuard
{
    private static string Show(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static ArgumentOutOfRangeException Fail(string name, object value, string rule) =>
        new(name, value, $"{name} must be {rule}, got {(value is double d ? Show(d) : Convert.ToString(value, CultureInfo.InvariantCulture))}");

    public static void Positive(double value, string name)
    {
        if (!(value > 0) || double.IsInfinity(value)) throw Fail(name, value, "a finite number > 0");
    }

    public static void NonNegative(double value, string name)
    {
        if (!(value >= 0) || double.IsInfinity(value)) throw Fail(name, value, "a finite number ≥ 0");
    }

    /// <summary>value ∈ [0, 1).</summary>
    public static void UnitInterval(double value, string name)
    {
        if (!(value >= 0 && value < 1)) throw Fail(name, value, "in [0, 1)");
    }

    /// <summary>value ∈ [0, 1].</summary>
    public static void ClosedUnitInterval(double value, string name)
    {
        if (!(value >= 0 && value <= 1)) throw Fail(name, value, "in [0, 1]");
    }

    public static void AtLeast(long value, long min, string name)
    {
        if (value < min) throw Fail(name, value, $"≥ {min}");
    }

    public static void Defined<T>(T value, string name) where T : struct, Enum
    {
        if (!Enum.IsDefined(value)) throw Fail(name, value, $"one of {string.Join(", ", Enum.GetNames<T>())}");
    }

    public static void NotEmpty(string? value, string name)
    {
        if (string.IsNullOrWhiteSpace(value)) throw new ArgumentOutOfRangeException(name, value, $"{name} must not be empty");
    }

    /// <summary>Formats a property value for <c>ToString()</c> and configuration files (invariant culture).</summary>
    public static string Format(object? value) => value switch
    {
        null => "null",
        double d => Show(d),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        string s => s,
        System.Collections.IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Format)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>"Type { A = 1, B = 2 }" with every public property sorted by name.</summary>
    public static string Describe(object record)
    {
        var props = record.GetType().GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => $"{p.Name} = {Format(p.GetValue(record))}");
        return $"{record.GetType().Name} {{ {string.Join(", ", props)} }}";
    }
}
