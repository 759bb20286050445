using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Data.Csv;
using NaturalGradient.Training.Models;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad evaluate --run DIR [--data FILE]</c>: loads the trained model of a run folder (model.json + model.pt) and
/// reports its mean loss (the training objective: Gaussian ½(r − t)² in standardised target units, or cross-entropy)
/// and accuracy, on the run's own train/test split (re-read with the run's options) or on the rows of a CSV file.
/// </summary>
internal static class EvaluateCommand
{
    public static Command Create(CliContext ctx)
    {
        var run = CliOptions.Text("--run", "Run folder written by natgrad train", null, helpName: "dir");
        var data = CliOptions.Text("--data", "CSV file with the model's feature and target columns [default: the run's own data, train and test split]", null, helpName: "path");
        var command = new Command("evaluate", "Report loss and accuracy of a trained model (a run folder) on its data or on a CSV file");
        command.Add(run);
        command.Add(data);
        command.SetAction(parse => Execute(ctx, parse.GetValue(run), parse.GetValue(data)));
        return command;
    }

    private static int Execute(CliContext ctx, string? runDir, string? dataPath)
    {
        if (string.IsNullOrWhiteSpace(runDir)) throw new UsageException("--run is required (a folder written by natgrad train)");
        var saved = SavedModel.Load(runDir);
        using var model = saved.LoadModule(runDir);
        ILikelihood likelihood = saved.Task == TaskKind.Classification ? new CategoricalLikelihood() : new GaussianLikelihood();
        if (!string.IsNullOrWhiteSpace(dataPath))
        {
            using var table = FeatureTable.Read(dataPath, saved, withTargets: true);
            var (loss, accuracy) = Evaluator.Evaluate(model, likelihood, table.X, table.Y!, 1024);
            ctx.Out.WriteLine(Line(Path.GetFileName(dataPath), table.Lines.Length, loss, accuracy));
            return ExitCodes.Success;
        }
        if (saved.DataSource is null || saved.Data is null) throw new UsageException($"{runDir}: the model description names no data; give --data");
        using var original = ctx.LoadData(saved.DataSource, saved.Data);
        using var ds = original.To(saved.ScalarType);
        foreach (var (name, x, y) in new[] { ("train", ds.TrainX, ds.TrainY), ("test", ds.TestX, ds.TestY) })
        {
            if (x.shape[0] == 0) continue;
            var (loss, accuracy) = Evaluator.Evaluate(model, likelihood, x, y, 1024);
            ctx.Out.WriteLine(Line(name, x.shape[0], loss, accuracy));
        }
        return ExitCodes.Success;
    }

    private static string Line(string name, long rows, double loss, double? accuracy) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{name}: {rows} rows, loss {loss:G6}{(accuracy is { } a ? $", accuracy {100 * a:F2} %" : "")}");
}
