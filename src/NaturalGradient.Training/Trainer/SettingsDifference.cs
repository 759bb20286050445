namespace NaturalGradient.Training;

/// <summary>
/// Names what differs between two settings descriptions of the form <c>Type { A = 1, B = 2 }</c>
/// (<see cref="OptionGuard.Describe"/>, e.g. <see cref="OptimizerSettings.ToString"/>): the method, or else the
/// settings whose values differ, so that a refused resume says in one short line what changed.
/// </summary>
internal static class SettingsDifference
{
    /// <summary>At most this many differing settings are named; the rest are counted.</summary>
    public const int MaxNamed = 3;

    /// <summary>
    /// "the checkpoint is for the method ekfac, but this run is kfac", or for one method
    /// "the checkpoint is for the method kfac with Damping 0.01, but this run has Damping 0.1".
    /// </summary>
    /// <param name="checkpoint">The settings description stored in the checkpoint.</param>
    /// <param name="run">The settings description of the run that would continue it.</param>
    public static string DescribeMethodMismatch(string checkpoint, string run)
    {
        var found = Parse(checkpoint);
        var expected = Parse(run);
        if (found is null || expected is null)
            return "the checkpoint is for other method settings than this run's (its settings text is not readable)";
        string Name(Dictionary<string, string> s) => s.TryGetValue(nameof(OptimizerSettings.Name), out var n) ? n : "(unnamed)";
        if (Name(found) != Name(expected))
            return $"the checkpoint is for the method {Name(found)}, but this run is {Name(expected)}";
        var differing = found.Keys.Union(expected.Keys)
            .Where(k => !(found.TryGetValue(k, out var a) && expected.TryGetValue(k, out var b) && a == b))
            .OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (differing.Count == 0) return $"the checkpoint is for the method {Name(found)} with other settings than this run's";
        var named = differing.Take(MaxNamed).ToList();
        string Values(Dictionary<string, string> s) =>
            string.Join(" and ", named.Select(k => $"{k} {(s.TryGetValue(k, out var v) ? v : "(absent)")}"));
        var more = differing.Count > MaxNamed ? $" (and {differing.Count - MaxNamed} more settings)" : "";
        return $"the checkpoint is for the method {Name(found)} with {Values(found)}, but this run has {Values(expected)}{more}";
    }

    /// <summary>The properties of a <c>Type { A = 1, B = [x,y] }</c> description, or null when it has another form.</summary>
    public static Dictionary<string, string>? Parse(string description)
    {
        int open = description.IndexOf('{');
        if (open < 0 || !description.TrimEnd().EndsWith('}')) return null;
        var body = description[(open + 1)..description.TrimEnd().LastIndexOf('}')].Trim();
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (body.Length == 0) return result;
        int depth = 0, start = 0;
        for (int i = 0; i <= body.Length; i++)
        {
            if (i < body.Length)
            {
                char c = body[i];
                if (c is '{' or '[') depth++;
                else if (c is '}' or ']') depth--;
                if (depth != 0 || c != ',' || i + 1 >= body.Length || body[i + 1] != ' ') continue;
            }
            var part = body[start..i];
            int eq = part.IndexOf(" = ", StringComparison.Ordinal);
            if (eq <= 0) return null;
            result[part[..eq].Trim()] = part[(eq + 3)..].Trim();
            start = i + 2;
        }
        return result;
    }
}
