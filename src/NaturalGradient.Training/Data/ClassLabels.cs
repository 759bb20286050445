using System.Globalization;

namespace NaturalGradient.Training.Data;

/// <summary>
/// Maps label text to class indices. Classes are sorted: numerically when every label is a number
/// (so 2 comes before 10, and "1" and "1.0" are one class), otherwise by ordinal string order.
/// </summary>
public sealed class ClassLabels
{
    private readonly Dictionary<string, long> _indexByName;
    private readonly bool _numeric;

    private ClassLabels(IReadOnlyList<string> names, bool numeric)
    {
        Names = names;
        _numeric = numeric;
        _indexByName = names.Select((n, i) => (n, (long)i)).ToDictionary(p => p.n, p => p.Item2, StringComparer.Ordinal);
    }

    /// <summary>Class names in class-index order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The classes found in <paramref name="labels"/> (surrounding spaces ignored).</summary>
    public static ClassLabels FromLabels(IEnumerable<string> labels)
    {
        var distinct = labels.Select(l => l.Trim()).Distinct(StringComparer.Ordinal).ToList();
        if (distinct.Count > 0 && distinct.All(l => TryNumber(l, out _)))
        {
            var names = distinct.Select(l => { TryNumber(l, out var v); return v; })
                .Distinct().Order().Select(Canonical).ToList();
            return new ClassLabels(names, numeric: true);
        }
        return new ClassLabels(distinct.Order(StringComparer.Ordinal).ToList(), numeric: false);
    }

    /// <summary>Class index of <paramref name="label"/>; throws <see cref="KeyNotFoundException"/> for an unknown label.</summary>
    public long IndexOf(string label)
    {
        var key = label.Trim();
        if (_numeric && TryNumber(key, out var v)) key = Canonical(v);
        return _indexByName.TryGetValue(key, out var index) ? index : throw new KeyNotFoundException($"unknown class label \"{label}\"");
    }

    private static bool TryNumber(string text, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && double.IsFinite(value);

    private static string Canonical(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
