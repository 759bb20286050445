namespace NaturalGradient.Data;

/// <summary>How to read and split a data set. Defaults suit the embedded sets.</summary>
public sealed record DataOptions
{
    /// <summary>Target column name (CSV files); embedded sets have their own default.</summary>
    public string? TargetColumn { get; init; }

    /// <summary>Regression or classification; null = the embedded set's default, or inferred for CSV (non-numeric target → classification).</summary>
    public TaskKind? Task { get; init; }

    /// <summary>Columns to leave out of the features (e.g. a date or an id).</summary>
    public IReadOnlyList<string> IgnoreColumns { get; init; } = Array.Empty<string>();

    /// <summary>Fraction of rows held out for testing, in [0, 1); default 0.2.</summary>
    public double TestFraction { get; init; } = 0.2;

    /// <summary>Seed of the train/test split; default 0.</summary>
    public long Seed { get; init; }

    /// <summary>Standardise regression targets with the training split's mean and deviation; default true.</summary>
    public bool StandardizeTargets { get; init; } = true;

    /// <summary>Field delimiter for CSV; null = ',' (use ' ' for whitespace-separated files such as UCI ecoli.data).</summary>
    public char? Delimiter { get; init; }

    /// <summary>Use at most this many training examples (quick runs); null = all.</summary>
    public int? MaxTrainExamples { get; init; }
}
