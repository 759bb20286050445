using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace NaturalGradient.Cli.Parsing;

/// <summary>
/// Creates System.CommandLine options whose parse errors are one line naming the option:
/// "--lr: 'abc' is not a number". Range checks belong to the option records' <c>Validate()</c>.
/// </summary>
internal static class CliOptions
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>A required or defaulted floating-point option.</summary>
    public static Option<double> Double(string name, string description, double defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => ParseDouble(r, name) ?? defaultValue,
    };

    /// <summary>A floating-point option that may be absent (null).</summary>
    public static Option<double?> OptionalDouble(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = r => ParseDouble(r, name),
    };

    /// <summary>An integer option with a default.</summary>
    public static Option<int> Int(string name, string description, int defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => (int?)ParseLong(r, name, int.MinValue, int.MaxValue) ?? defaultValue,
    };

    /// <summary>An integer option that may be absent (null).</summary>
    public static Option<int?> OptionalInt(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = r => (int?)ParseLong(r, name, int.MinValue, int.MaxValue),
    };

    /// <summary>A 64-bit integer option with a default.</summary>
    public static Option<long> Long(string name, string description, long defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = r => ParseLong(r, name, long.MinValue, long.MaxValue) ?? defaultValue,
    };

    /// <summary>
    /// A text option checked by <paramref name="check"/>, which throws <see cref="FormatException"/> with a message
    /// such as "'x' is not one of a, b" (reported as "--name: 'x' is not one of a, b").
    /// </summary>
    public static Option<string> Text(string name, string description, string? defaultValue, Action<string>? check = null,
        string? helpName = null)
    {
        var option = new Option<string>(name) { Description = description, HelpName = helpName };
        if (defaultValue is not null) option.DefaultValueFactory = _ => defaultValue;
        if (check is not null)
            option.Validators.Add(result =>
            {
                if (result.Implicit) return;
                var value = result.GetValueOrDefault<string>();
                if (value is null) return;
                try { check(value); }
                catch (FormatException e) { result.AddError($"{name}: {e.Message}"); }
                // A parser that names the option itself (RunLifecycleOptions): its message as is. Uncaught here, it
                // would escape the parser as an unhandled exception with a stack trace.
                catch (UsageException e) { result.AddError(e.Message); }
            });
        return option;
    }

    /// <summary>Checks that <paramref name="value"/> is one of <paramref name="choices"/> (case-insensitive).</summary>
    /// <exception cref="FormatException">"'x' is not one of a, b, c".</exception>
    public static string Choice(string value, IEnumerable<string> choices)
    {
        var list = choices.ToList();
        var hit = list.FirstOrDefault(c => string.Equals(c, value.Trim(), StringComparison.OrdinalIgnoreCase));
        return hit ?? throw new FormatException($"'{value}' is not one of {string.Join(", ", list)}");
    }

    private static double? ParseDouble(ArgumentResult r, string name)
    {
        var text = SingleToken(r);
        if (text is null) return null;
        if (double.TryParse(text, NumberStyles.Float, Inv, out var v) && double.IsFinite(v)) return v;
        r.AddError($"{name}: '{text}' is not a number");
        return null;
    }

    private static long? ParseLong(ArgumentResult r, string name, long min, long max)
    {
        var text = SingleToken(r);
        if (text is null) return null;
        bool integer = long.TryParse(text, NumberStyles.AllowLeadingSign, Inv, out var v);
        if (integer && v >= min && v <= max) return v;
        // An integer too large for the option's type (or for a long) is out of range, not "not an integer".
        bool digits = text.TrimStart('+', '-').Length > 0 && text.TrimStart('+', '-').All(char.IsAsciiDigit);
        r.AddError(integer || digits
            ? string.Create(Inv, $"{name}: '{text}' is out of range ({(text.StartsWith('-') ? $"at least {min}" : $"at most {max}")})")
            : $"{name}: '{text}' is not an integer");
        return null;
    }

    private static string? SingleToken(ArgumentResult r) => r.Tokens.Count == 0 ? null : r.Tokens[^1].Value;
}
