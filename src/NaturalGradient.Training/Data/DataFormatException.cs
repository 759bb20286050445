namespace NaturalGradient.Training.Data;

/// <summary>
/// Bad or missing input data. The message is one line that names the file and, where they apply, the line
/// (1-based, as an editor counts them) and the column (1-based position and name), e.g.
/// <c>data.csv, line 7, column 3 (temp_max): non-numeric value "n/a"</c>.
/// </summary>
public sealed class DataFormatException : Exception
{
    /// <summary>A message that is used as given.</summary>
    public DataFormatException(string message) : base(message) { }

    /// <summary>A message about <paramref name="file"/>, optionally at a line and column.</summary>
    /// <param name="file">The file (or resource) the problem is in.</param>
    /// <param name="line">1-based line number, or null when no line applies.</param>
    /// <param name="column">1-based column position, or null when no column applies.</param>
    /// <param name="columnName">The column's name, if known.</param>
    /// <param name="problem">What is wrong, without the location.</param>
    public DataFormatException(string file, int? line, int? column, string? columnName, string problem)
        : base(Format(file, line, column, columnName, problem))
    {
        File = file;
        Line = line;
        Column = column;
        ColumnName = columnName;
    }

    /// <summary>The file or resource, when the exception was built from a location.</summary>
    public string? File { get; }

    /// <summary>1-based line number, when one applies.</summary>
    public int? Line { get; }

    /// <summary>1-based column position, when one applies.</summary>
    public int? Column { get; }

    /// <summary>The column's name, when known.</summary>
    public string? ColumnName { get; }

    private static string Format(string file, int? line, int? column, string? columnName, string problem)
    {
        var where = file;
        if (line is { } l) where += $", line {l}";
        if (column is { } c) where += $", column {c}";
        if (columnName is not null) where += $" ({columnName})";
        return OneLine($"{where}: {problem}");
    }

    /// <summary>Shows a cell's text in a message: quoted, newlines escaped, long text shortened.</summary>
    internal static string Quote(string text)
    {
        const int max = 40;
        var shown = text.Length > max ? text[..max] + "…" : text;
        return "\"" + shown.Replace("\r", "\\r").Replace("\n", "\\n") + "\"";
    }

    private static string OneLine(string text) => text.Replace("\r", "\\r").Replace("\n", "\\n");
}
