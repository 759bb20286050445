using System.Globalization;

namespace NaturalGradient.Training.Models;

/// <summary>
/// Parses the textual model specifications used on the command line. Errors are <see cref="FormatException"/>s
/// whose message quotes the offending text and says what was expected (callers prefix the option name).
/// </summary>
public static class ModelSpecParser
{
    /// <summary>
    /// Parses hidden layer widths such as <c>"32,16"</c> (spaces allowed). An empty string or <c>"none"</c>
    /// means no hidden layer (a linear model).
    /// </summary>
    /// <exception cref="FormatException">"'32,x' is not a list of positive integers".</exception>
    public static int[] ParseHidden(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var trimmed = text.Trim();
        if (trimmed.Length == 0 || trimmed.Equals("none", StringComparison.OrdinalIgnoreCase)) return Array.Empty<int>();
        var parts = trimmed.Split(',');
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out widths[i]) || widths[i] < 1)
                throw new FormatException($"'{text}' is not a list of positive integers");
        }
        return widths;
    }

    /// <summary>Parses <c>tanh</c>, <c>relu</c> or <c>sigmoid</c> (case-insensitive).</summary>
    /// <exception cref="FormatException">Any other text.</exception>
    public static Activation ParseActivation(string text) => text.Trim().ToLowerInvariant() switch
    {
        "tanh" => Activation.Tanh,
        "relu" => Activation.Relu,
        "sigmoid" => Activation.Sigmoid,
        _ => throw new FormatException($"'{text}' is not one of tanh, relu, sigmoid"),
    };

    /// <summary>Parses <c>mlp</c> or <c>conv</c> (case-insensitive).</summary>
    /// <exception cref="FormatException">Any other text.</exception>
    public static ModelKind ParseKind(string text) => text.Trim().ToLowerInvariant() switch
    {
        "mlp" => ModelKind.Mlp,
        "conv" => ModelKind.Conv,
        _ => throw new FormatException($"'{text}' is not one of mlp, conv"),
    };
}
