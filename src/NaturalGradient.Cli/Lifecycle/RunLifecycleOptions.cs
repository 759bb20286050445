using NaturalGradient.Training.Data;

namespace NaturalGradient.Cli.Commands;

/// <summary>Parsers of the data and run-lifecycle options of <c>natgrad train</c> (--task, --delimiter, --checkpoint-every).</summary>
internal static class RunLifecycleOptions
{
    /// <summary>"regression" or "classification" (case-insensitive).</summary>
    public static TaskKind ParseTask(string text) => text.Trim().ToLowerInvariant() switch
    {
        "regression" => TaskKind.Regression,
        "classification" => TaskKind.Classification,
        _ => throw new UsageException($"--task must be regression or classification, got '{text}'"),
    };

    /// <summary>One character, "tab" (\t) or "space" (runs of blanks).</summary>
    public static char ParseDelimiter(string text) => text switch
    {
        "tab" or "\\t" or "\t" => '\t',
        "space" or " " => ' ',
        { Length: 1 } c when c[0] is not ('"' or '\n' or '\r') => c[0],
        _ => throw new UsageException($"--delimiter must be one character, 'tab' or 'space', got '{text}'"),
    };

    /// <summary>"N" = every N steps, "Ne" = every N epochs (N ≥ 1).</summary>
    public static (long? Steps, int? Epochs) ParseCheckpointEvery(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        bool epochs = t.EndsWith('e');
        var number = epochs ? t[..^1] : t;
        if (!long.TryParse(number, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n < 1
            || (epochs && n > int.MaxValue))
            throw new UsageException($"--checkpoint-every must be N (steps) or Ne (epochs) with N ≥ 1, got '{text}'");
        return epochs ? (null, (int)n) : (n, null);
    }
}
