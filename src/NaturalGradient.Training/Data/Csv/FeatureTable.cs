using System.Globalization;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Data.Csv;

/// <summary>
/// New rows for a trained model: reads a CSV file with the model's column handling (delimiter, header, feature
/// columns by name in the model's order) and standardises the features with the scaling fitted at training time
/// (never refitted). Used by <c>natgrad evaluate --data</c> and <c>natgrad predict</c>.
/// </summary>
public sealed class FeatureTable : IDisposable
{
    private FeatureTable(Tensor x, Tensor? y, int[] lines)
    {
        X = x;
        Y = y;
        Lines = lines;
    }

    /// <summary>Standardised features, rows × d, in the model's dtype.</summary>
    public Tensor X { get; }

    /// <summary>Targets in training units (standardised regression targets, or class indices of the model), or null when not read.</summary>
    public Tensor? Y { get; }

    /// <summary>The file line of each row.</summary>
    public int[] Lines { get; }

    /// <summary>Reads <paramref name="path"/> for <paramref name="model"/>.</summary>
    /// <param name="path">CSV file.</param>
    /// <param name="model">The trained model's description (feature names, scalings, classes, how the data were read).</param>
    /// <param name="withTargets">Read the target column too (evaluation); predictions need only the features.</param>
    /// <exception cref="DataFormatException">A missing column, a missing, non-numeric or non-finite cell, or a label the
    /// model never saw (file, line and column named).</exception>
    public static FeatureTable Read(string path, SavedModel model, bool withTargets)
    {
        if (model.FeatureNames is not { } featureNames || model.FeatureScaling is null && model.Data?.StandardizeFeatures == true)
            throw new DataFormatException(path, null, null, null, "this model was not trained on a table; new rows can only be given for CSV-trained models");
        if (!File.Exists(path)) throw new DataFormatException(path, null, null, null, "file not found");
        var options = model.Data ?? new DataOptions();
        using var text = new StreamReader(path);
        using var records = new DelimitedRecordReader(text, path, options.Delimiter ?? ',').ReadAll().GetEnumerator();
        if (!records.MoveNext()) throw new DataFormatException(path, 1, 1, null, "empty file");
        var first = records.Current;
        IReadOnlyList<string> names = options.HasHeader ? first.Fields
            : options.ColumnNames ?? Enumerable.Range(1, first.Fields.Count).Select(i => $"column{i}").ToArray();
        int Index(string name) => names.ToList().IndexOf(name) is var i && i >= 0 ? i
            : throw new DataFormatException(path, first.Line, null, null, $"no column \"{name}\" (the model's inputs are: {string.Join(", ", featureNames)})");
        var featureIndex = featureNames.Select(Index).ToArray();
        string? targetName = model.TargetNames?.FirstOrDefault();
        int targetIndex = withTargets ? Index(targetName ?? throw new DataFormatException(path, null, null, null, "the model names no target column")) : -1;

        var rows = new List<double>();
        var targets = new List<double>();
        var lines = new List<int>();
        void Add(DelimitedRecord r)
        {
            if (r.Fields.Count != names.Count)
                throw new DataFormatException(path, r.Line, Math.Min(r.Fields.Count, names.Count) + 1, null,
                    $"the row has {r.Fields.Count} fields, expected {names.Count}");
            foreach (int j in featureIndex) rows.Add(Number(r, j));
            if (withTargets)
            {
                if (model.Task == TaskKind.Regression) targets.Add(Number(r, targetIndex));
                else
                {
                    var label = r.Fields[targetIndex];
                    int c = model.ClassNames!.ToList().IndexOf(label);
                    if (c < 0)
                        throw new DataFormatException(path, r.Line, targetIndex + 1, names[targetIndex],
                            $"label {DataFormatException.Quote(label)} was not a class in training ({string.Join(", ", model.ClassNames!)})");
                    targets.Add(c);
                }
            }
            lines.Add(r.Line);
        }
        double Number(DelimitedRecord r, int j)
        {
            var cell = r.Fields[j];
            if (!double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                throw new DataFormatException(path, r.Line, j + 1, names[j],
                    cell.Length == 0 ? "missing value" : $"non-numeric or non-finite value {DataFormatException.Quote(cell)}");
            return v;
        }
        if (!options.HasHeader) Add(first);
        while (records.MoveNext()) Add(records.Current);
        if (lines.Count == 0) throw new DataFormatException(path, first.Line + 1, 1, null, "no data rows");

        int d = featureIndex.Length;
        var flat = rows.ToArray();
        if (model.FeatureScaling is { } fs)
            for (int i = 0; i < lines.Count; i++)
                for (int k = 0; k < d; k++) flat[i * d + k] = (flat[i * d + k] - fs.Mean[k]) / fs.Scale[k];
        var dtype = model.ScalarType;
        var x = tensor(flat, new long[] { lines.Count, d }, dtype: ScalarType.Float64).to_type(dtype);
        Tensor? y = null;
        if (withTargets)
        {
            if (model.Task == TaskKind.Regression)
            {
                var t = targets.ToArray();
                if (model.TargetScaling is { } ts)
                    for (int i = 0; i < t.Length; i++) t[i] = (t[i] - ts.Mean[0]) / ts.Scale[0];
                y = tensor(t, new long[] { t.Length, 1 }, dtype: ScalarType.Float64).to_type(dtype);
            }
            else y = tensor(targets.Select(c => (long)c).ToArray(), dtype: ScalarType.Int64);
        }
        return new FeatureTable(x.DetachFromDisposeScope(), y?.DetachFromDisposeScope(), lines.ToArray());
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        X.Dispose();
        Y?.Dispose();
    }
}
