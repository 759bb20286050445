namespace NaturalGradient.Training;

/// <summary>
/// <see cref="Trainer.Run"/> refused a resume checkpoint written with other <see cref="OptimizerSettings"/> than the
/// run's: another method, or the same method with settings that differ. <see cref="Exception.Message"/> names the
/// settings by property ("the checkpoint is for the method kfac with Damping 0.01, but this run has Damping 0.1"); a
/// front end with its own names for the settings (natgrad's <c>--damping</c>) builds its line from
/// <see cref="Differences"/> and the two settings with <see cref="Describe"/>, in the same grammar. The other
/// refusals of a checkpoint (model, data, seed, batch size, position) are <see cref="InvalidDataException"/>s.
/// </summary>
public sealed class ResumeSettingsMismatchException : Exception
{
    /// <param name="checkpoint">The checkpoint's settings: property name → text (<see cref="SettingsDifference.Parse"/>).</param>
    /// <param name="run">The run's settings, in the same form.</param>
    internal ResumeSettingsMismatchException(IReadOnlyDictionary<string, string> checkpoint, IReadOnlyDictionary<string, string> run)
        : base(Build(checkpoint, run, out var differences))
    {
        CheckpointSettings = checkpoint;
        RunSettings = run;
        Differences = differences;
    }

    /// <summary>
    /// Every setting stored in the checkpoint, as <see cref="OptimizerSettings.ToString"/> writes it: property name →
    /// value text (invariant culture, doubles round-trip ("R": 0.01, 1E-08), enums by member name, <c>null</c> for none).
    /// </summary>
    public IReadOnlyDictionary<string, string> CheckpointSettings { get; }

    /// <summary>Every setting of the run that would continue the checkpoint, in the form of <see cref="CheckpointSettings"/>.</summary>
    public IReadOnlyDictionary<string, string> RunSettings { get; }

    /// <summary>The checkpoint's method (<see cref="OptimizerSettings.Name"/>).</summary>
    public string CheckpointMethod => MethodOf(CheckpointSettings);

    /// <summary>The run's method.</summary>
    public string RunMethod => MethodOf(RunSettings);

    /// <summary>True when both are for one method and only its settings differ.</summary>
    public bool SameMethod => CheckpointMethod == RunMethod;

    /// <summary>
    /// The properties whose values differ (a property missing on one side counts), in ordinal order; empty when the
    /// methods differ (then nothing else is compared).
    /// </summary>
    public IReadOnlyList<string> Differences { get; }

    /// <summary>
    /// The refusal in one line, naming the settings by the given phrases: "the checkpoint is for the method ekfac, but
    /// this run is kfac" for another method (the phrases are not used); for the same method "the checkpoint is for the
    /// method kfac with A and B, but this run has A′ and B′", at most <see cref="SettingsDifference.MaxNamed"/> named and
    /// the rest counted ("(and 2 more settings)").
    /// </summary>
    /// <param name="phrases">Per differing setting, its phrase for the checkpoint and for the run (e.g. "Damping 0.01", "Damping 0.1").</param>
    public string Describe(IReadOnlyList<(string Checkpoint, string Run)> phrases) =>
        SettingsDifference.Describe(CheckpointMethod, RunMethod, phrases);

    private static string MethodOf(IReadOnlyDictionary<string, string> settings) =>
        settings.TryGetValue(nameof(OptimizerSettings.Name), out var name) ? name : "(unnamed)";

    private static string Build(IReadOnlyDictionary<string, string> checkpoint, IReadOnlyDictionary<string, string> run, out IReadOnlyList<string> differences)
    {
        differences = MethodOf(checkpoint) != MethodOf(run) ? Array.Empty<string>() : SettingsDifference.Differing(checkpoint, run);
        string Phrase(IReadOnlyDictionary<string, string> s, string key) => $"{key} {(s.TryGetValue(key, out var v) ? v : "(absent)")}";
        var phrases = differences.Select(k => (Phrase(checkpoint, k), Phrase(run, k))).ToList();
        return SettingsDifference.Describe(MethodOf(checkpoint), MethodOf(run), phrases);
    }
}
