namespace NaturalGradient.Training.Data.Csv;

/// <summary>
/// The columns of a CSV file and their roles: the target, the ignored ones, and the features (all others).
/// Resolves names from the header, <see cref="DataOptions.ColumnNames"/>, or column1, column2, ….
/// </summary>
public sealed class CsvColumns
{
    private CsvColumns(IReadOnlyList<string> names, int targetIndex, IReadOnlyList<int> featureIndices)
    {
        Names = names;
        TargetIndex = targetIndex;
        FeatureIndices = featureIndices;
    }

    /// <summary>All column names, in file order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>0-based position of the target column.</summary>
    public int TargetIndex { get; }

    /// <summary>0-based positions of the feature columns, in file order.</summary>
    public IReadOnlyList<int> FeatureIndices { get; }

    /// <summary>The target column's name.</summary>
    public string TargetName => Names[TargetIndex];

    /// <summary>Names of the feature columns.</summary>
    public IReadOnlyList<string> FeatureNames => FeatureIndices.Select(i => Names[i]).ToArray();

    /// <summary>Resolves names and roles.</summary>
    /// <param name="source">File name for messages.</param>
    /// <param name="firstRecord">The header (if <see cref="DataOptions.HasHeader"/>) or the first data row.</param>
    /// <param name="options">Target, ignored columns, header switch and column names.</param>
    /// <exception cref="DataFormatException">Unknown target or ignored column, duplicate name, name count mismatch.</exception>
    public static CsvColumns Resolve(string source, DelimitedRecord firstRecord, DataOptions options)
    {
        int line = firstRecord.Line;
        string[] names;
        if (options.ColumnNames is { } given)
        {
            if (given.Count != firstRecord.Fields.Count)
                throw new DataFormatException(source, line, null, null,
                    $"ColumnNames gives {given.Count} names but the {(options.HasHeader ? "header" : "first row")} has {firstRecord.Fields.Count} fields");
            names = given.ToArray();
        }
        else if (options.HasHeader)
            names = firstRecord.Fields.Select((n, i) => n.Length == 0 ? GeneratedName(i) : n).ToArray();
        else
            names = Enumerable.Range(0, firstRecord.Fields.Count).Select(GeneratedName).ToArray();

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < names.Length; i++)
        {
            if (seen.TryGetValue(names[i], out var earlier))
                throw new DataFormatException(source, line, i + 1, Printable(names[i]), $"duplicate column name (also column {earlier + 1})");
            seen[names[i]] = i;
        }

        string available = ListForMessage(names);
        if (options.TargetColumn is not { } target)
            throw new DataFormatException(source, line, null, null, $"no target column given (set {options.Names.Target}); the columns are: {available}");
        if (!seen.TryGetValue(target, out int targetIndex))
            throw new DataFormatException(source, line, null, null, $"unknown target column \"{target}\"; the columns are: {available}");

        var ignored = new HashSet<int>();
        foreach (var name in options.IgnoreColumns)
        {
            if (!seen.TryGetValue(name, out int index))
                throw new DataFormatException(source, line, null, null, $"unknown column \"{name}\" in {options.Names.Ignore}; the columns are: {available}");
            if (index == targetIndex)
                throw new DataFormatException(source, line, index + 1, name, "the target column cannot also be ignored");
            ignored.Add(index);
        }

        var features = Enumerable.Range(0, names.Length).Where(i => i != targetIndex && !ignored.Contains(i)).ToArray();
        if (features.Length == 0)
            throw new DataFormatException(source, line, null, null, $"no feature columns left after the target and {options.Names.Ignore}");
        return new CsvColumns(names, targetIndex, features);
    }

    private static string GeneratedName(int index) => $"column{index + 1}";

    /// <summary>At most this many column names are listed in a message (a binary file read as CSV can have thousands).</summary>
    internal const int ListedNames = 20;

    /// <summary>
    /// The column names for a one-line message: each <see cref="Printable"/>, at most <see cref="ListedNames"/> of them,
    /// then "… (N columns)".
    /// </summary>
    internal static string ListForMessage(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(ListedNames).Select(Printable)) + (names.Count > ListedNames ? $", … ({names.Count} columns)" : "");

    /// <summary>A name with its control characters as \xNN (a binary file read as CSV would put raw bytes, even NUL, on the terminal).</summary>
    internal static string Printable(string name) =>
        name.Any(char.IsControl) ? string.Concat(name.Select(c => char.IsControl(c) ? $"\\x{(int)c:X2}" : c.ToString())) : name;
}
