using System.Globalization;

namespace NaturalGradient.Training.Data.Csv;

/// <summary>
/// Loads a table from delimited text into a <see cref="Dataset"/>. Every column other than the target and
/// <see cref="DataOptions.IgnoreColumns"/> is a numeric feature. The target is a number (regression) or a label
/// (classification: text or integers, mapped to sorted class indices). Errors are <see cref="DataFormatException"/>s
/// naming the file, line and column.
/// </summary>
public static class CsvDatasetLoader
{
    /// <summary>Loads the CSV file at <paramref name="path"/>; the dataset is named after the file.</summary>
    /// <exception cref="DataFormatException">Missing file, or bad content.</exception>
    public static Dataset Load(string path, DataOptions options)
    {
        if (!File.Exists(path))
            throw new DataFormatException(path, null, null, null, "file not found");
        using var reader = new StreamReader(path);
        return Load(reader, path, options, Path.GetFileNameWithoutExtension(path), $"CSV file {Path.GetFullPath(path)}");
    }

    /// <summary>Loads delimited text from <paramref name="text"/>.</summary>
    /// <param name="text">The text; not disposed.</param>
    /// <param name="source">File or resource name for messages.</param>
    /// <param name="options">Target, ignored columns, delimiter, header, split and scaling.</param>
    /// <param name="name">Dataset name.</param>
    /// <param name="provenance">One line saying where the data came from.</param>
    /// <exception cref="DataFormatException">Bad content.</exception>
    public static Dataset Load(TextReader text, string source, DataOptions options, string name, string? provenance)
    {
        var records = new DelimitedRecordReader(text, source, options.Delimiter ?? ',').ReadAll().GetEnumerator();
        if (!records.MoveNext())
            throw new DataFormatException(source, 1, 1, null,
                options.HasHeader ? "empty file: expected a header row with the column names" : "empty file: no data rows");
        var first = records.Current;
        var columns = CsvColumns.Resolve(source, first, options);

        var features = new List<double[]>();
        var labels = new List<string>();
        var labelLines = new List<int>();
        int lastLine = first.Line, seen = 0;
        if (!options.HasHeader) AddRow(first);
        while (records.MoveNext()) AddRow(records.Current);
        if (seen == 0)
            throw new DataFormatException(source, lastLine + 1, 1, null, "no data rows after the header");

        if (features.Count == 0)
            throw new DataFormatException(source, lastLine, null, null, $"every data row has a missing or non-finite value ({options.Names.DropMissing} dropped them all)");
        // A numeric column stays numeric when some cells are missing or non-finite: those cells were rejected (or their
        // rows dropped) above, so one "NaN" never turns a regression target into class labels.
        var task = options.Task ?? (labels.All(IsNumber) ? TaskKind.Regression : TaskKind.Classification);
        int targetColumn = columns.TargetIndex + 1;
        if (task == TaskKind.Regression)
        {
            var targets = new double[labels.Count];
            for (int i = 0; i < labels.Count; i++)
                if (!TryNumber(labels[i], out targets[i]))
                    throw new DataFormatException(source, labelLines[i], targetColumn, columns.TargetName,
                        $"non-numeric target value {DataFormatException.Quote(labels[i])}: a regression target must be a number (set {options.Names.Task} classification for labels)");
            return Build(targets, null, null);
        }

        var classes = ClassLabels.FromLabels(labels);
        if (classes.Names.Count < 2)
            throw new DataFormatException(source, labelLines[0], targetColumn, columns.TargetName,
                $"only one class ({DataFormatException.Quote(classes.Names[0])}) in the target column: classification needs at least two");
        return Build(null, labels.Select(classes.IndexOf).ToArray(), classes.Names);

        Dataset Build(double[]? targets, long[]? classIndices, IReadOnlyList<string>? classNames)
        {
            try
            {
                return TabularDatasetBuilder.Build(name, features, columns.FeatureNames, columns.TargetName,
                    targets, classIndices, classNames, options, provenance);
            }
            catch (ArgumentException e)
            {
                throw new DataFormatException(source, null, null, null, $"too few data rows to split: {e.Message}");
            }
        }

        void AddRow(DelimitedRecord record)
        {
            lastLine = record.Line;
            seen++;
            var fields = record.Fields;
            int expected = columns.Names.Count;
            if (fields.Count < expected)
                throw new DataFormatException(source, record.Line, fields.Count + 1, columns.Names[fields.Count],
                    $"too few fields: the row has {fields.Count}, expected {expected}");
            if (fields.Count > expected)
                throw new DataFormatException(source, record.Line, expected + 1, null,
                    $"too many fields: the row has {fields.Count}, expected {expected}");

            var row = new double[columns.FeatureIndices.Count];
            for (int k = 0; k < row.Length; k++)
            {
                int j = columns.FeatureIndices[k];
                var cell = fields[j];
                if (IsMissing(cell))
                {
                    if (options.DropMissing) return;
                    throw new DataFormatException(source, record.Line, j + 1, columns.Names[j],
                        $"{Missing(cell)} (drop such rows with {options.Names.DropMissing}, or list the column in {options.Names.Ignore})");
                }
                if (!TryNumber(cell, out row[k]))
                    throw new DataFormatException(source, record.Line, j + 1, columns.Names[j],
                        $"non-numeric value {DataFormatException.Quote(cell)} (list the column in {options.Names.Ignore} if it is not a feature)");
            }
            var label = fields[columns.TargetIndex];
            bool numericTarget = options.Task != TaskKind.Classification;
            if (label.Length == 0 || (numericTarget && IsMissing(label)))
            {
                if (options.DropMissing) return;
                throw new DataFormatException(source, record.Line, columns.TargetIndex + 1, columns.TargetName,
                    $"{Missing(label, "target ")} (drop such rows with {options.Names.DropMissing})");
            }
            features.Add(row);
            labels.Add(label);
            labelLines.Add(record.Line);
        }
    }

    private static bool IsNumber(string text) => TryNumber(text, out _);

    /// <summary>An empty cell, or a number that is NaN or infinite ("NaN", "inf", "-Infinity", "1e999").</summary>
    private static bool IsMissing(string cell) =>
        cell.Length == 0 || (double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && !double.IsFinite(v))
        || cell.Trim().ToLowerInvariant() is "nan" or "inf" or "+inf" or "-inf" or "infinity" or "+infinity" or "-infinity";

    private static string Missing(string cell, string what = "") =>
        cell.Length == 0 ? $"missing {what}value" : $"non-finite {what}value {DataFormatException.Quote(cell)}";

    private static bool TryNumber(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);
}
