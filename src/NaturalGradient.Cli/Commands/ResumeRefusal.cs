using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// The line <c>natgrad train --resume DIR</c> prints when the checkpoint was written by the same method with other
/// settings: each setting named as the option that sets it, with its value as that option is typed
/// ("--damping 0.01", "--kfac-inverse eigen", "--kl-clip none", "--eps 1e-8"), and what to do about it. A setting
/// that no option sets keeps its library name and text, as in the library's message. Another method keeps the
/// library's line ("the checkpoint is for the method ekfac, but this run is kfac").
/// </summary>
internal static class ResumeRefusal
{
    /// <summary>
    /// "the checkpoint is for the method kfac with --damping 0.01, but this run has --damping 0.1; to continue from the
    /// checkpoint, set its values in DIR/run.json, or start a new run without --resume".
    /// </summary>
    /// <param name="e">The trainer's refusal.</param>
    /// <param name="o">The train options (their names and spellings).</param>
    /// <param name="runFile">The run.json the run's options were read from.</param>
    /// <param name="typed">Whether the run's stored command line gives an option (by name); the run's value of an option
    /// it does not give is the method's default and reads "--damping 0.01 (the default)". Null: not marked.</param>
    public static string Describe(ResumeSettingsMismatchException e, TrainOptions o, string runFile, Func<string, bool>? typed = null)
    {
        if (!e.SameMethod) return e.Message;
        return $"{e.Describe(Phrases(e, o, typed))}; to continue from the checkpoint, set its values in {runFile}, or start a new run without {o.Resume.Name}";
    }

    /// <summary>One (checkpoint, run) phrase pair per differing option, ordered by option name; settings without an option after them.</summary>
    public static IReadOnlyList<(string Checkpoint, string Run)> Phrases(ResumeSettingsMismatchException e, TrainOptions o, Func<string, bool>? typed = null)
    {
        var options = o.PropertyToOption;
        string Label(string setting) => setting switch
        {
            // --hf-preconditioner none|diagonal|kfac sets both flags (--hf-diagonal is its older spelling).
            nameof(OptimizerSettings.HfDiagonalPreconditioner) or nameof(OptimizerSettings.HfKfacPreconditioner) => o.HfPreconditioner.Name,
            // Only --tensorboard asks for the predicted-KL series.
            nameof(OptimizerSettings.ReportPredictedKl) => o.TensorBoard.Name,
            _ => options.TryGetValue(setting, out var option) ? option : setting,
        };
        string RunPhrase(string label, string setting)
        {
            var phrase = Phrase(label, setting, e.RunSettings, o);
            bool valued = label.StartsWith("--", StringComparison.Ordinal) && !phrase.StartsWith("no ", StringComparison.Ordinal) && phrase != label;
            return valued && typed is not null && !typed(label) ? phrase + " (the default)" : phrase;
        }
        return e.Differences.GroupBy(Label).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (Phrase(g.Key, g.First(), e.CheckpointSettings, o), RunPhrase(g.Key, g.First())))
            .ToList();
    }

    /// <summary>How <paramref name="label"/> (an option, or a setting without one) reads with the value of <paramref name="setting"/> in <paramref name="settings"/>.</summary>
    private static string Phrase(string label, string setting, IReadOnlyDictionary<string, string> settings, TrainOptions o)
    {
        string? Value(string key) => settings.TryGetValue(key, out var v) ? v : null;
        if (label == o.HfPreconditioner.Name)
        {
            bool kfac = IsTrue(Value(nameof(OptimizerSettings.HfKfacPreconditioner)));
            bool diagonal = IsTrue(Value(nameof(OptimizerSettings.HfDiagonalPreconditioner)));
            return $"{label} {(kfac ? "kfac" : diagonal ? "diagonal" : "none")}";
        }
        if (label == o.TensorBoard.Name) return IsTrue(Value(setting)) ? label : $"no {label}";
        var text = Value(setting);
        if (!label.StartsWith("--", StringComparison.Ordinal)) return $"{label} {text ?? "(absent)"}";
        if (text is null) return $"no {label}";
        if (text == "null") return setting == nameof(OptimizerSettings.KlClip) ? $"{label} none" : $"no {label}";
        return $"{label} {Spelling(setting, text, o) ?? Typed(text)}";
    }

    private static bool IsTrue(string? text) => bool.TryParse(text, out var b) && b;

    /// <summary>
    /// The option's spelling of an enum setting (stored by member name, e.g. MonteCarlo → "mc"): the first of the
    /// spellings the option's help lists ("empirical|mc|exact") that parses to it; null for a setting that is not a choice.
    /// </summary>
    internal static string? Spelling(string setting, string text, TrainOptions o)
    {
        if (Choices(o).TryGetValue(setting, out var choice))
            return choice.Option.HelpName?.Split('|').FirstOrDefault(s => choice.Parse(s).ToString() == text);
        return null;
    }

    /// <summary>The choice options that set an enum setting, with the parser of their text.</summary>
    internal static IReadOnlyDictionary<string, (Option<string> Option, Func<string, object> Parse)> Choices(TrainOptions o) =>
        new Dictionary<string, (Option<string>, Func<string, object>)>
        {
            [nameof(OptimizerSettings.DampingSchedule)] = (o.DampingSchedule, t => CliChoices.DampingSchedule(t)),
            [nameof(OptimizerSettings.Fisher)] = (o.Fisher, t => CliChoices.Fisher(t)),
            [nameof(OptimizerSettings.MetricForm)] = (o.MetricForm, t => CliChoices.MetricForm(t)),
            [nameof(OptimizerSettings.MetricSource)] = (o.Metric, t => CliChoices.Metric(t)),
            [nameof(OptimizerSettings.KfacInverse)] = (o.KfacInverse, t => CliChoices.KfacInverse(t)),
            [nameof(OptimizerSettings.KfacFactorPrecision)] = (o.FactorPrecision, t => CliChoices.FactorPrecision(t)),
            [nameof(OptimizerSettings.KfacInversePrecision)] = (o.InversePrecision, t => CliChoices.InversePrecision(t)),
            [nameof(OptimizerSettings.KfacDamping)] = (o.KfacDamping, t => CliChoices.KfacDamping(t)),
            [nameof(OptimizerSettings.KfacDistribution)] = (o.KfacDistribution, t => CliChoices.KfacDistribution(t)),
            [nameof(OptimizerSettings.KlClipForm)] = (o.KlClipForm, t => CliChoices.KlClipForm(t)),
            [nameof(OptimizerSettings.HfSolver)] = (o.HfSolver, t => CliChoices.HfSolver(t)),
        };

    /// <summary>
    /// A stored value as it is typed: numbers in exponent form with a lower-case e and no padding ("1E-08" → "1e-8"),
    /// also inside a schedule ("exp:1E-05" → "exp:1e-5"); other text unchanged.
    /// </summary>
    internal static string Typed(string text) => string.Join(':', text.Split(':').Select(part =>
    {
        int e = part.IndexOf('E');
        if (e <= 0 || !double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out _)
            || !int.TryParse(part[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exponent))
            return part;
        return string.Create(CultureInfo.InvariantCulture, $"{part[..e]}e{exponent}");
    }));
}
