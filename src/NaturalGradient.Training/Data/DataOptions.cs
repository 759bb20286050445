namespace NaturalGradient.Training.Data;

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

    /// <summary>Seed of the train/test split (and of the subset that <see cref="MaxTrainExamples"/> keeps); default 0.</summary>
    public long Seed { get; init; }

    /// <summary>Standardise regression targets with the training split's mean and deviation; default true.</summary>
    public bool StandardizeTargets { get; init; } = true;

    /// <summary>Standardise features with the training split's mean and deviation; default true. Ignored for images (kept in [0, 1]).</summary>
    public bool StandardizeFeatures { get; init; } = true;

    /// <summary>
    /// Field delimiter for CSV; null = ','. ' ' means runs of spaces and tabs (leading and trailing ones ignored),
    /// as in UCI ecoli.data; '\t' means one tab per field.
    /// </summary>
    public char? Delimiter { get; init; }

    /// <summary>The first row of a CSV file holds the column names; default true. Set false for files such as
    /// UCI ecoli.data and give <see cref="ColumnNames"/> (otherwise columns are named column1, column2, …).</summary>
    public bool HasHeader { get; init; } = true;

    /// <summary>Column names for a CSV file, in file order. Meant for files without a header (<see cref="HasHeader"/>
    /// false); for a file with a header they replace its names (the counts must match). null = the header's names,
    /// or column1, column2, … for a file without one.</summary>
    public IReadOnlyList<string>? ColumnNames { get; init; }

    /// <summary>
    /// Drop CSV rows with an empty, NaN or infinite value in a feature or the target column (default false: such a row
    /// is an error naming the file, line and column).
    /// </summary>
    public bool DropMissing { get; init; }

    /// <summary>How these options are named in error messages: the property names by default; a command-line tool
    /// gives its own option names (e.g. <c>--ignore</c> for <see cref="IgnoreColumns"/>).</summary>
    public DataOptionNames Names { get; init; } = DataOptionNames.Properties;

    /// <summary>Use at most this many training examples (quick runs), a seeded random subset of the training split;
    /// the test split is unchanged; null = all.</summary>
    public int? MaxTrainExamples { get; init; }
}

/// <summary>The names under which <see cref="DataOptions"/> appear in error messages.</summary>
/// <param name="Target">Names <see cref="DataOptions.TargetColumn"/>.</param>
/// <param name="Ignore">Names <see cref="DataOptions.IgnoreColumns"/>.</param>
/// <param name="Task">Names <see cref="DataOptions.Task"/>.</param>
/// <param name="DropMissing">Names <see cref="DataOptions.DropMissing"/>.</param>
public sealed record DataOptionNames(string Target, string Ignore, string Task, string DropMissing)
{
    /// <summary>The property names: TargetColumn, IgnoreColumns, Task, DropMissing.</summary>
    public static DataOptionNames Properties { get; } = new(nameof(DataOptions.TargetColumn), nameof(DataOptions.IgnoreColumns),
        nameof(DataOptions.Task), nameof(DataOptions.DropMissing));
}
