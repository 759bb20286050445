using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Output;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Data.Csv;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad predict --run DIR --data new.csv --out predictions.csv</c>: the trained model's predictions for new rows,
/// read with the run's column handling and standardised with the training split's scaling. Regression: the
/// prediction in the data's units; classification: the predicted class and every class probability.
/// </summary>
internal static class PredictCommand
{
    public static Command Create(CliContext ctx)
    {
        var run = CliOptions.Text("--run", "Run folder written by natgrad train", null, helpName: "dir");
        var data = CliOptions.Text("--data", "CSV file with the model's feature columns (other columns are ignored)", null, helpName: "path");
        var output = CliOptions.Text("--out", "Predictions CSV to write", null, helpName: "file");
        var command = new Command("predict", "Write a trained model's predictions for the rows of a CSV file");
        command.Add(run);
        command.Add(data);
        command.Add(output);
        command.SetAction(parse => Execute(ctx, parse.GetValue(run), parse.GetValue(data), parse.GetValue(output)));
        return command;
    }

    private static int Execute(CliContext ctx, string? runDir, string? dataPath, string? outPath)
    {
        if (string.IsNullOrWhiteSpace(runDir)) throw new UsageException("--run is required (a folder written by natgrad train)");
        if (string.IsNullOrWhiteSpace(dataPath)) throw new UsageException("--data is required (a CSV file with the model's feature columns)");
        if (string.IsNullOrWhiteSpace(outPath)) throw new UsageException("--out is required (the predictions CSV to write)");
        if (Directory.Exists(outPath)) throw new UsageException($"--out '{outPath}' is a folder; give a file name");
        var folder = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
        if (!Directory.Exists(folder)) throw new UsageException($"--out: the folder '{folder}' does not exist");
        RunFolder.CheckWritable(folder, "--out");

        var saved = SavedModel.Load(runDir);
        using var model = saved.LoadModule(runDir);
        using var table = FeatureTable.Read(dataPath, saved, withTargets: false);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var output = model.call(table.X);
        AtomicFile.Write(outPath, w =>
        {
            if (saved.Task == TaskKind.Classification)
            {
                var classes = saved.ClassNames!;
                var p = softmax(output, 1).to_type(ScalarType.Float64).cpu();
                var pred = output.argmax(1).cpu().data<long>().ToArray();
                var probs = p.data<double>().ToArray();
                w.WriteLine(string.Join(",", new[] { "line", "predicted" }.Concat(classes.Select(c => "p_" + c))));
                for (int i = 0; i < pred.Length; i++)
                    w.WriteLine(string.Join(",", new[] { Int(table.Lines[i]), classes[(int)pred[i]] }
                        .Concat(Enumerable.Range(0, classes.Count).Select(c => Num(probs[i * classes.Count + c])))));
            }
            else
            {
                var values = saved.TargetScaling is { } ts ? ts.ToScaling().Unapply(output) : output;
                var v = values.to_type(ScalarType.Float64).cpu().data<double>().ToArray();
                var name = saved.TargetNames?.FirstOrDefault() ?? "prediction";
                w.WriteLine($"line,{name}");
                for (int i = 0; i < table.Lines.Length; i++) w.WriteLine($"{Int(table.Lines[i])},{Num(v[i])}");
            }
        });
        ctx.Out.WriteLine($"{table.Lines.Length} predictions written to {outPath}");
        return ExitCodes.Success;
    }

    private static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static string Int(long v) => v.ToString(CultureInfo.InvariantCulture);
}
