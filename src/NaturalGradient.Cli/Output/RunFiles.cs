using NaturalGradient.Cli.Reports;
using System.Text.Json;
using System.Text.Json.Serialization;
using NaturalGradient.Cli.Commands;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Output;

/// <summary>
/// Writes a run folder: config.json, steps.csv, epochs.csv and metrics.json, each atomically (temp file + rename).
/// </summary>
internal static class RunFiles
{
    public const string Config = "config.json";
    public const string Steps = "steps.csv";
    public const string Epochs = "epochs.csv";
    public const string Metrics = "metrics.json";
    public const string Approximation = "approximation.csv";
    public const string ApproximationFigure = "approximation.png";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>Writes all four files into <paramref name="outDir"/> (created if needed).</summary>
    public static void Write(string outDir, TrainConfig config, DataInfo data, TrainingResult result,
        TrainingDivergedException? diverged, IReadOnlyList<string> commandLine, string? status = null)
    {
        Directory.CreateDirectory(outDir);
        AtomicFile.Write(Path.Combine(outDir, Steps), w => CsvTables.WriteSteps(w, result.Steps));
        AtomicFile.Write(Path.Combine(outDir, Epochs), w => CsvTables.WriteEpochs(w, result.Epochs));
        if (result.Steps.Any(s => s.Approximation is { Count: > 0 }))
        {
            AtomicFile.Write(Path.Combine(outDir, Approximation), w => CsvTables.WriteApproximation(w, result.Steps));
            ApproximationPlot.Write(Path.Combine(outDir, ApproximationFigure), result.Steps);
        }
        AtomicFile.WriteText(Path.Combine(outDir, Metrics), JsonSerializer.Serialize(MetricsDocument(result, diverged, status), Json) + "\n");
        AtomicFile.WriteText(Path.Combine(outDir, Config), JsonSerializer.Serialize(ConfigDocument(config, data, result, commandLine), Json) + "\n");
    }

    private static object ConfigDocument(TrainConfig c, DataInfo d, TrainingResult r, IReadOnlyList<string> commandLine) => new
    {
        command = "natgrad " + string.Join(" ", commandLine.Select(Quote)),
        created_utc = DateTime.UtcNow.ToString("O"),
        data = new
        {
            source = c.Data,
            name = d.Name,
            task = d.Task,
            provenance = d.Provenance,
            train_examples = d.TrainCount,
            test_examples = d.TestCount,
            input_shape = d.InputShape,
            outputs = d.Outputs,
            classes = d.ClassNames,
            options = c.DataOptions,
        },
        model = new
        {
            kind = c.Model.Kind,
            hidden = c.Model.Hidden,
            activation = c.Model.Activation,
            parameters = r.Plan.ParameterCount,
            description = c.Model.ToString(),
        },
        optimizer = c.Optimizer,
        optimizer_description = c.Optimizer.ToString(),
        trainer = new
        {
            epochs = c.Trainer.Epochs,
            batch_size = c.Trainer.BatchSize,
            seed = c.Trainer.Seed,
            dtype = c.Trainer.Dtype.ToString().ToLowerInvariant(),
            threads = r.Plan.Threads,
            eval_batch_size = c.Trainer.EvalBatchSize,
            steps_per_epoch = r.Plan.StepsPerEpoch,
            total_steps = r.Plan.TotalSteps,
        },
        environment = EnvironmentInfo.Collect(),
    };

    private static object MetricsDocument(TrainingResult r, TrainingDivergedException? diverged, string? status)
    {
        var final = r.Final;
        var stepMs = r.Steps.Select(s => s.StepMs).Order().ToList();
        return new
        {
            status = status ?? (diverged is null ? "completed" : "diverged"),
            error = diverged?.Message,
            optimizer = r.Plan.Optimizer,
            task = r.Plan.Task,
            epochs_completed = final.Epoch,
            steps = r.Steps.Count,
            parameters = r.Plan.ParameterCount,
            final_train_loss = final.TrainLoss,
            final_test_loss = final.TestLoss,
            final_train_accuracy = final.TrainAccuracy,
            final_test_accuracy = final.TestAccuracy,
            best_test_loss = r.Epochs.Where(e => double.IsFinite(e.TestLoss)).Select(e => (double?)e.TestLoss).Min(),
            wall_seconds = r.WallSeconds,
            steps_per_second = r.StepsPerSecond,
            step_ms_median = stepMs.Count == 0 ? (double?)null : stepMs[stepMs.Count / 2],
            solver_iterations_mean = Mean(r.Steps.Where(s => s.SolverIterations is not null).Select(s => (double)s.SolverIterations!.Value)),
            solver_reference_steps = r.Steps.Count(s => s.SolverIterationsUnpreconditioned is not null),
            solver_iterations_saved_mean = Mean(r.Steps.Where(s => s.SolverIterationsUnpreconditioned is not null && s.SolverIterations is not null)
                .Select(s => (double)(s.SolverIterationsUnpreconditioned!.Value - s.SolverIterations!.Value))),
            rss_mb_step_100 = r.RssAtStep100Mb,
            rss_mb_end = r.RssEndMb,
            rss_growth_percent = r.RssGrowthPercent,
        };
    }

    private static double? Mean(IEnumerable<double> values)
    {
        var list = values.ToList();
        return list.Count == 0 ? null : list.Average();
    }

    private static string Quote(string arg) => arg.Length == 0 || arg.Any(char.IsWhiteSpace) ? $"\"{arg}\"" : arg;
}
