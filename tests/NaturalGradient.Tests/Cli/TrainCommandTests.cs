using System.Text.Json;
using NaturalGradient.Training.Data;

namespace NaturalGradient.Tests.Cli;

[Collection("Torch")]
public class TrainCommandTests
{
    private static (CliHarness.Outcome Outcome, string Dir) Train(Func<string, DataOptions, Dataset>? load, params string[] extra)
    {
        var dir = CliHarness.TempDir();
        var options = new Dictionary<string, string> { ["--data"] = "tiny", ["--hidden"] = "8", ["--batch-size"] = "16", ["--epochs"] = "3", ["--lr"] = "0.05", ["--out"] = dir };
        for (int i = 0; i + 1 < extra.Length; i += 2) options[extra[i]] = extra[i + 1];
        var args = options.SelectMany(kv => new[] { kv.Key, kv.Value }).Prepend("train").ToArray();
        return (CliHarness.Run(args, load), dir);
    }

    private static string[] Lines(string dir, string file) =>
        File.ReadAllLines(Path.Combine(dir, file)).Where(l => l.Length > 0).ToArray();

    [Fact]
    public void Train_Regression_WritesAllFilesWithColumnsAndRows()
    {
        var (outcome, dir) = Train(null);   // 48 training rows, batch 16 → 3 steps per epoch
        Assert.Equal(0, outcome.ExitCode);
        Assert.Empty(outcome.Stderr);
        Assert.Equal(new[] { "checkpoint.ngck", "config.json", "epochs.csv", "metrics.json", "model.json", "model.pt", "run.json", "steps.csv" },
            Directory.GetFiles(dir).Select(Path.GetFileName).Order().ToArray());   // no temp files left

        var steps = Lines(dir, "steps.csv");
        Assert.Equal("step,epoch,loss,lr,damping,rho,predicted_kl,solver_iterations,step_ms,rss_mb,skipped,curvature_ms,solver_iterations_unpreconditioned,comm_ms", steps[0]);
        Assert.Equal(1 + 9, steps.Length);
        Assert.All(steps.Skip(1), l => Assert.Equal(14, l.Split(',').Length));
        Assert.StartsWith("9,3,", steps[^1]);

        var epochs = Lines(dir, "epochs.csv");
        Assert.Equal("epoch,train_loss,test_loss,train_accuracy,test_accuracy,lr,elapsed_s", epochs[0]);
        Assert.Equal(1 + 4, epochs.Length);                 // epoch 0 (untrained) + 3
        Assert.Equal(",", epochs[1].Split(',')[3] + "," + epochs[1].Split(',')[4]);   // no accuracy for regression

        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json")));
        var root = config.RootElement;
        Assert.Equal("tiny", root.GetProperty("data").GetProperty("source").GetString());
        Assert.Equal("regression", root.GetProperty("data").GetProperty("task").GetString());
        Assert.Equal(0.05, root.GetProperty("optimizer").GetProperty("learning_rate").GetDouble());
        Assert.Equal("sgd", root.GetProperty("optimizer").GetProperty("name").GetString());
        Assert.Equal("empirical", root.GetProperty("optimizer").GetProperty("fisher").GetString());
        Assert.Equal("float32", root.GetProperty("trainer").GetProperty("dtype").GetString());
        Assert.Equal(new[] { 8 }, root.GetProperty("model").GetProperty("hidden").EnumerateArray().Select(e => e.GetInt32()));
        Assert.False(string.IsNullOrEmpty(root.GetProperty("environment").GetProperty("torchsharp").GetString()));
        Assert.True(root.GetProperty("environment").GetProperty("torch_threads").GetInt32() >= 1);

        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.Equal("completed", metrics.RootElement.GetProperty("status").GetString());
        Assert.Equal(9, metrics.RootElement.GetProperty("steps").GetInt32());

        Assert.Contains("epoch 3/3", outcome.Stdout);         // plain progress lines
        Assert.Contains("run summary", outcome.Stdout);       // summary table
        Assert.Contains("RSS at end", outcome.Stdout);
    }

    [Fact]
    public void Train_Classification_FillsAccuracyColumns()
    {
        var (outcome, dir) = Train((_, _) => TinyData.Classification(), "--optimizer", "adam");
        Assert.Equal(0, outcome.ExitCode);
        var last = Lines(dir, "epochs.csv")[^1].Split(',');
        Assert.InRange(double.Parse(last[3], System.Globalization.CultureInfo.InvariantCulture), 0, 1);
        Assert.InRange(double.Parse(last[4], System.Globalization.CultureInfo.InvariantCulture), 0, 1);
        Assert.Contains("test accuracy", outcome.Stdout);
    }

    private static string[] Losses(string seed)
    {
        var (outcome, dir) = Train(null, "--seed", seed);
        Assert.Equal(0, outcome.ExitCode);
        return Lines(dir, "steps.csv").Skip(1).Select(l => l.Split(',')[2]).ToArray();
    }

    [Fact]
    public void SameSeed_IdenticalStepLosses_DifferentSeedDiffers()
    {
        var a = Losses("3");
        Assert.Equal(a, Losses("3"));
        Assert.NotEqual(a, Losses("4"));
    }

    [Fact]
    public void Rerun_WithForce_ReplacesFilesOfAnEarlierRun()
    {
        var (first, dir) = Train(null, "--epochs", "2");
        Assert.Equal(0, first.ExitCode);
        File.WriteAllText(Path.Combine(dir, "steps.csv"), "stale");
        var refused = CliHarness.Run(new[] { "train", "--data", "tiny", "--batch-size", "16", "--epochs", "1", "--out", dir });
        Assert.Equal(2, refused.ExitCode);
        Assert.Equal($"natgrad: error: --out '{dir}' holds an earlier run; give --force to overwrite it, or --resume '{dir}' to continue it",
            Assert.Single(refused.ErrorLines));
        Assert.Equal("stale", File.ReadAllText(Path.Combine(dir, "steps.csv")));
        var second = CliHarness.Run(new[] { "train", "--data", "tiny", "--batch-size", "16", "--epochs", "1", "--out", dir, "--force" });
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(1 + 3, Lines(dir, "steps.csv").Length);
        Assert.Equal(2, Lines(dir, "epochs.csv").Length - 1);
    }

    [Fact]
    public void Float64_And_LrDecay_AreRecorded()
    {
        var (outcome, dir) = Train(null, "--dtype", "float64", "--lr-decay", "step:1:0.5");
        Assert.Equal(0, outcome.ExitCode);
        var lrs = Lines(dir, "epochs.csv").Skip(1).Select(l => l.Split(',')[5]).ToArray();
        Assert.Equal(new[] { "0.05", "0.05", "0.025", "0.0125" }, lrs);
        Assert.Contains("\"dtype\": \"float64\"", File.ReadAllText(Path.Combine(dir, "config.json")));
    }
}
