using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>The fully resolved configuration of one <c>natgrad train</c> run.</summary>
/// <param name="Data">What <c>--data</c> named (embedded name or path).</param>
/// <param name="DataOptions">How the data are read and split.</param>
/// <param name="Model">The network.</param>
/// <param name="Optimizer">The method and its hyper-parameters.</param>
/// <param name="Trainer">Epochs, batch size, seed, dtype, threads.</param>
/// <param name="OutDir">Output folder.</param>
internal sealed record TrainConfig(string Data, DataOptions DataOptions, ModelSpec Model, OptimizerSettings Optimizer,
    TrainerOptions Trainer, string OutDir)
{
    /// <summary>Folder for TensorBoard event files (<c>--tensorboard</c>), or null.</summary>
    public string? TensorBoardDir { get; init; }

    /// <summary>True when <see cref="Data"/> looks like a file path rather than a catalog name.</summary>
    public bool DataIsFile =>
        Path.GetExtension(Data).ToLowerInvariant() is ".csv" or ".tsv" or ".txt" or ".data"
        || (Data.IndexOfAny(new[] { '/', '\\' }) >= 0 && File.Exists(Data));
}

/// <summary>What was loaded, kept for the report after the tensors are gone.</summary>
internal sealed record DataInfo(string Source, string Name, TaskKind Task, string? Provenance, long TrainCount, long TestCount,
    long[] InputShape, long Outputs, IReadOnlyList<string>? ClassNames)
{
    public static DataInfo From(string source, Dataset d) =>
        new(source, d.Name, d.Task, d.Provenance, d.TrainCount, d.TestCount, d.InputShape, d.OutputCount, d.ClassNames);
}
