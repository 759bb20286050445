namespace NaturalGradient.Training;

/// <summary>
/// Names what differs between two settings descriptions of the form <c>Type { A = 1, B = 2 }</c>
/// (<see cref="OptionGuard.Describe"/>, e.g. <see cref="OptimizerSettings.ToString"/>): the method, or else the
/// settings whose values differ, so that a refused resume says in one short line what changed
/// (<see cref="ResumeSettingsMismatchException"/>).
/// </summary>
internal static class SettingsDifference
{
    /// <summary>At most this many differing settings are named; the rest are counted.</summary>
    public const int MaxNamed = 3;

    /// <summary>
    /// The refusal of a checkpoint whose settings description <paramref name="checkpoint"/> differs from the run's
    /// <paramref name="run"/>: a <see cref="ResumeSettingsMismatchException"/> ("the checkpoint is for the method
    /// ekfac, but this run is kfac", or for one method "the checkpoint is for the method kfac with Damping 0.01, but
    /// this run has Damping 0.1"), or, when a description is not of the form <c>Type { A = 1 }</c>, an
    /// <see cref="InvalidDataException"/> saying so.
    /// </summary>
    public static Exception Refusal(string checkpoint, string run)
    {
        var found = Parse(checkpoint);
        var expected = Parse(run);
        if (found is null || expected is null)
            return new InvalidDataException("the checkpoint is for other method settings than this run's (its settings text is not readable)");
        return new ResumeSettingsMismatchException(found, expected);
    }

    /// <summary>The keys whose values differ between the two (a key missing on one side counts), in ordinal order.</summary>
    public static IReadOnlyList<string> Differing(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Keys.Union(b.Keys)
            .Where(k => !(a.TryGetValue(k, out var x) && b.TryGetValue(k, out var y) && x == y))
            .OrderBy(k => k, StringComparer.Ordinal).ToList();

    /// <summary>
    /// "the checkpoint is for the method ekfac, but this run is kfac" when the methods differ; otherwise "the checkpoint
    /// is for the method kfac with A and B, but this run has A′ and B′ (and 2 more settings)" from the phrase pairs
    /// (at most <see cref="MaxNamed"/> named), or "… with other settings than this run's" when there are none.
    /// </summary>
    public static string Describe(string checkpointMethod, string runMethod, IReadOnlyList<(string Checkpoint, string Run)> phrases)
    {
        if (checkpointMethod != runMethod)
            return $"the checkpoint is for the method {checkpointMethod}, but this run is {runMethod}";
        if (phrases.Count == 0) return $"the checkpoint is for the method {checkpointMethod} with other settings than this run's";
        var named = phrases.Take(MaxNamed).ToList();
        var more = phrases.Count > MaxNamed ? $" (and {phrases.Count - MaxNamed} more settings)" : "";
        return $"the checkpoint is for the method {checkpointMethod} with {string.Join(" and ", named.Select(p => p.Checkpoint))}, " +
               $"but this run has {string.Join(" and ", named.Select(p => p.Run))}{more}";
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
