using System.Globalization;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Cli;

/// <summary>
/// Hostile inputs to <c>natgrad train</c> (each one a fault a user met): the exact one-line error and exit code, and
/// nothing trained or written; and the saved model used by <c>natgrad evaluate</c> and <c>natgrad predict</c>.
/// </summary>
[Collection("Torch")]
public class CliFaultTests
{
    private static string Csv(string dir, string name, IEnumerable<string> lines)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>y = 2a − b + noise over 60 rows; <paramref name="cell"/> replaces the target of row <paramref name="row"/>.</summary>
    private static string Regression(string dir, int row = -1, string cell = "", char delimiter = ',')
    {
        var random = new Random(1);
        var lines = new List<string> { string.Join(delimiter, "a", "b", "y") };
        for (int i = 0; i < 60; i++)
        {
            double a = random.NextDouble(), b = random.NextDouble();
            var y = i == row ? cell : (2 * a - b + 0.1 * random.NextDouble()).ToString("R", CultureInfo.InvariantCulture);
            lines.Add(string.Join(delimiter, a.ToString("R", CultureInfo.InvariantCulture), b.ToString("R", CultureInfo.InvariantCulture), y));
        }
        return Csv(dir, "reg.csv", lines);
    }

    private static void AssertError(CliHarness.Outcome outcome, int code, string line)
    {
        Assert.Equal(code, outcome.ExitCode);
        Assert.Equal(line, Assert.Single(outcome.ErrorLines));
    }

    [Theory]
    [InlineData("NaN", "non-finite target value \"NaN\"")]
    [InlineData("inf", "non-finite target value \"inf\"")]
    [InlineData("", "missing target value")]
    public void Non_finite_or_missing_regression_target_is_an_error_not_a_switch_to_classification(string cell, string problem)
    {
        var dir = CliHarness.TempDir();
        var csv = Regression(dir, row: 7, cell: cell);
        var run = Path.Combine(dir, "run");
        var outcome = CliHarness.RunReal("train", "--data", csv, "--target", "y", "--epochs", "1", "--out", run);
        AssertError(outcome, 2, $"natgrad: error: {csv}, line 9, column 3 (y): {problem} (drop such rows with --drop-missing)");
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void Drop_missing_drops_the_row_and_keeps_regression()
    {
        var dir = CliHarness.TempDir();
        var csv = Regression(dir, row: 7, cell: "NaN");
        var run = Path.Combine(dir, "run");
        var outcome = CliHarness.RunReal("train", "--data", csv, "--target", "y", "--epochs", "1", "--drop-missing", "--test-fraction", "0", "--out", run);
        Assert.Equal(0, outcome.ExitCode);
        var saved = SavedModel.Load(run);
        Assert.Equal(TaskKind.Regression, saved.Task);
        Assert.Contains("\"train_examples\": 59", File.ReadAllText(Path.Combine(run, "config.json")));
    }

    [Fact]
    public void Task_delimiter_and_header_options_are_honoured()
    {
        var dir = CliHarness.TempDir();
        var random = new Random(2);
        var rows = Enumerable.Range(0, 40).Select(i =>
            string.Create(CultureInfo.InvariantCulture, $"{random.NextDouble():R};{random.NextDouble():R};{i % 3}")).ToList();
        var csv = Csv(dir, "classes.csv", rows);
        var run = Path.Combine(dir, "run");
        var outcome = CliHarness.RunReal("train", "--data", csv, "--target", "column3", "--task", "classification", "--delimiter", ";",
            "--no-header", "--epochs", "1", "--out", run);
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var saved = SavedModel.Load(run);
        Assert.Equal(TaskKind.Classification, saved.Task);
        Assert.Equal(new[] { "0", "1", "2" }, saved.ClassNames);
        Assert.Equal(new[] { "column1", "column2" }, saved.FeatureNames);
    }

    [Fact]
    public void Csv_errors_name_the_cli_options()
    {
        var dir = CliHarness.TempDir();
        var csv = Regression(dir);
        AssertError(CliHarness.RunReal("train", "--data", csv, "--target", "y", "--ignore", "zz", "--out", Path.Combine(dir, "r")), 2,
            $"natgrad: error: {csv}, line 1: unknown column \"zz\" in --ignore; the columns are: a, b, y");
    }

    [Fact]
    public void Threads_beyond_the_machine_are_refused_before_any_work()
    {
        var dir = Path.Combine(CliHarness.TempDir(), "run");
        AssertError(CliHarness.Run(new[] { "train", "--data", "tiny", "--threads", "100000", "--out", dir }), 2,
            $"natgrad: error: --threads must be at most the {Environment.ProcessorCount} logical cores of this machine, got 100000");
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Learning_rate_beyond_float32_is_refused()
    {
        AssertError(CliHarness.Run(new[] { "train", "--data", "tiny", "--lr", "1e300" }), 2,
            "natgrad: error: --lr 1E+300 is beyond the float32 range (±3.4e38) of this run's weights");
    }

    [Fact]
    public void Exact_model_larger_than_the_memory_is_refused_with_its_prediction()
    {
        // tiny: 3 inputs, 1 output; hidden 20000 → p = 3·20000 + 20000 + 20000 + 1 = 100001 parameters;
        // predicted 4 bytes × (4p² + 128·1·p) = 160.054 GB.
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", "exact", "--hidden", "20000", "--max-exact-params", "200000" });
        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith("natgrad: error: --optimizer exact needs about 160.1 GB for its dense 100001×100001 Fisher, more than 80 % of the ",
            Assert.Single(outcome.ErrorLines));
    }

    [Fact]
    public void Out_is_checked_before_training()
    {
        var dir = CliHarness.TempDir();
        var file = Path.Combine(dir, "a-file");
        File.WriteAllText(file, "x");
        AssertError(CliHarness.Run(new[] { "train", "--data", "tiny", "--out", file }), 2, $"natgrad: error: --out '{file}' is a file, not a folder");
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--out", "/proc/natgrad-run" });
        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith("natgrad: error: --out '/proc/natgrad-run' is not a writable folder (", Assert.Single(outcome.ErrorLines));
        Assert.Empty(outcome.Stdout);
    }

    [Fact]
    public void Divergence_stops_with_exit_1_and_keeps_the_partial_run()
    {
        var dir = Path.Combine(CliHarness.TempDir(), "run");
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--lr", "1e4", "--epochs", "20", "--batch-size", "16", "--out", dir });
        Assert.Equal(1, outcome.ExitCode);
        Assert.StartsWith("natgrad: error: training diverged at step ", Assert.Single(outcome.ErrorLines));
        Assert.Contains("\"status\": \"diverged\"", File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.True(File.ReadAllLines(Path.Combine(dir, "steps.csv")).Length > 1);
    }

    [Fact]
    public void Saved_model_loads_with_module_load_and_predict_and_evaluate_use_it()
    {
        var dir = CliHarness.TempDir();
        var csv = Regression(dir);
        var run = Path.Combine(dir, "run");
        Assert.Equal(0, CliHarness.RunReal("train", "--data", csv, "--target", "y", "--epochs", "3", "--dtype", "float64", "--out", run).ExitCode);

        // evaluate on the run's own data reproduces the last evaluation of training.
        var evaluation = CliHarness.RunReal("evaluate", "--run", run);
        Assert.Equal(0, evaluation.ExitCode);
        var last = File.ReadAllLines(Path.Combine(run, "epochs.csv"))[^1].Split(',');
        double trainLoss = double.Parse(last[1], CultureInfo.InvariantCulture), testLoss = double.Parse(last[2], CultureInfo.InvariantCulture);
        Assert.Equal(string.Create(CultureInfo.InvariantCulture, $"train: 48 rows, loss {trainLoss:G6}\ntest: 12 rows, loss {testLoss:G6}\n"),
            evaluation.Stdout.Replace("\r", ""));

        // predict = the module loaded with module.load, on features standardised with model.json's scaling, unstandardised.
        var predictions = Path.Combine(dir, "pred.csv");
        Assert.Equal(0, CliHarness.RunReal("predict", "--run", run, "--data", csv, "--out", predictions).ExitCode);
        var rows = File.ReadAllLines(predictions);
        Assert.Equal("line,y", rows[0]);
        Assert.Equal(61, rows.Length);

        var saved = SavedModel.Load(run);
        using var model = ModelFactory.Build(saved.Spec, saved.InputShape, saved.Outputs, ScalarType.Float64);
        model.load(Path.Combine(run, "model.pt"));
        var lines = File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',').Select(c => double.Parse(c, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var fs = saved.FeatureScaling!;
        var ts = saved.TargetScaling!;
        var x = tensor(lines.SelectMany(r => new[] { (r[0] - fs.Mean[0]) / fs.Scale[0], (r[1] - fs.Mean[1]) / fs.Scale[1] }).ToArray(), new long[] { 60, 2 }, ScalarType.Float64);
        using (no_grad())
        {
            var expected = model.call(x).data<double>().ToArray().Select(v => v * ts.Scale[0] + ts.Mean[0]).ToArray();
            var actual = rows.Skip(1).Select(r => double.Parse(r.Split(',')[1], CultureInfo.InvariantCulture)).ToArray();
            for (int i = 0; i < 60; i++) Assert.Equal(expected[i], actual[i], 12);

            // evaluate --data: the Gaussian loss ½(r − t)² in standardised target units over the file's rows.
            double loss = lines.Select((r, i) => 0.5 * Math.Pow((expected[i] - r[2]) / ts.Scale[0], 2)).Average();
            var onFile = CliHarness.RunReal("evaluate", "--run", run, "--data", csv);
            Assert.Equal(0, onFile.ExitCode);
            var reported = double.Parse(onFile.Stdout.Trim().Split("loss ")[1], CultureInfo.InvariantCulture);
            Assert.Equal(loss, reported, 5);
            Assert.StartsWith("reg.csv: 60 rows, loss ", onFile.Stdout);
        }
        Assert.Equal(Enumerable.Range(2, 60).Select(i => i.ToString(CultureInfo.InvariantCulture)), rows.Skip(1).Select(r => r.Split(',')[0]));

        // a file without a model input column is refused with one line.
        var missing = Csv(dir, "nob.csv", new[] { "a,y", "0.5,1" });
        AssertError(CliHarness.RunReal("predict", "--run", run, "--data", missing, "--out", predictions), 2,
            $"natgrad: error: {missing}, line 1: no column \"b\" (the model's inputs are: a, b)");
    }
}
