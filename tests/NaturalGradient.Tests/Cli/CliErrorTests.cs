using NaturalGradient.Training.Data;

namespace NaturalGradient.Tests.Cli;

[Collection("Torch")]
public class CliErrorTests
{
    private static void AssertUsageError(CliHarness.Outcome outcome, string expectedLine)
    {
        Assert.Equal(2, outcome.ExitCode);
        var line = Assert.Single(outcome.ErrorLines);
        Assert.Equal(expectedLine, line);
        Assert.DoesNotContain(" at ", outcome.Stderr);
    }

    private static string[] Train(params string[] extra) => new[] { "train", "--data", "tiny" }.Concat(extra).ToArray();

    [Theory]
    [InlineData(new[] { "--frobnicate" }, "natgrad: error: Unrecognized command or argument '--frobnicate'. (see 'natgrad train --help')")]
    [InlineData(new[] { "--lr", "abc" }, "natgrad: error: --lr: 'abc' is not a number")]
    [InlineData(new[] { "--optimizer", "--lr", "0.1" }, "natgrad: error: --optimizer needs a value (the next word is the option --lr)")]
    [InlineData(new[] { "--inverse-period", "--epochs", "1" }, "natgrad: error: --inverse-period needs a value (the next word is the option --epochs)")]
    [InlineData(new[] { "--out", "--force" }, "natgrad: error: --out needs a value (the next word is the option --force)")]
    [InlineData(new[] { "--lr", "0" }, "natgrad: error: --lr must be a finite number > 0, got 0")]
    [InlineData(new[] { "--lr", "-0.5" }, "natgrad: error: --lr must be a finite number > 0, got -0.5")]
    [InlineData(new[] { "--batch-size", "0" }, "natgrad: error: --batch-size must be ≥ 1, got 0")]
    [InlineData(new[] { "--batch-size", "ten" }, "natgrad: error: --batch-size: 'ten' is not an integer")]
    [InlineData(new[] { "--epochs", "1.5" }, "natgrad: error: --epochs: '1.5' is not an integer")]
    [InlineData(new[] { "--inverse-period", "99999999999" }, "natgrad: error: --inverse-period: '99999999999' is out of range (at most 2147483647)")]
    [InlineData(new[] { "--epochs", "-99999999999999999999" }, "natgrad: error: --epochs: '-99999999999999999999' is out of range (at least -2147483648)")]
    [InlineData(new[] { "--optimizer", "lbfgs" }, "natgrad: error: --optimizer: 'lbfgs' is not one of adam, auto, block, diag, ekfac, exact, hf, kbfgs, kfac, ksd, sgd, tengrad")]
    [InlineData(new[] { "--activation", "gelu" }, "natgrad: error: --activation: 'gelu' is not one of tanh, relu, sigmoid")]
    [InlineData(new[] { "--hidden", "32,x" }, "natgrad: error: --hidden: '32,x' is not a list of positive integers")]
    [InlineData(new[] { "--model", "rnn" }, "natgrad: error: --model: 'rnn' is not one of mlp, conv")]
    [InlineData(new[] { "--dtype", "float16" }, "natgrad: error: --dtype: 'float16' is not one of float32, float64")]
    [InlineData(new[] { "--fisher", "true" }, "natgrad: error: --fisher: 'true' is not one of empirical, mc, exact")]
    [InlineData(new[] { "--lr-decay", "cosine" }, "natgrad: error: --lr-decay: 'cosine' is not none, exp:GAMMA or step:EPOCHS:GAMMA")]
    [InlineData(new[] { "--momentum", "1" }, "natgrad: error: --momentum must be in [0, 1), got 1")]
    [InlineData(new[] { "--damping", "-1" }, "natgrad: error: --damping must be a finite number > 0, got -1")]
    [InlineData(new[] { "--test-fraction", "1" }, "natgrad: error: --test-fraction must be in [0, 1), got 1")]
    [InlineData(new[] { "--metric", "unlabeled" }, "natgrad: error: --metric unlabeled needs --fisher mc or exact (the empirical Fisher needs labels)")]
    [InlineData(new[] { "--model", "conv" }, "natgrad: error: --model conv needs image inputs c×h×w with h, w ≥ 4, but the data have input shape [3] ('tiny')")]
    [InlineData(new[] { "--metric-form", "tonga" }, "natgrad: error: --metric-form: 'tonga' is not one of fisher, covariance")]
    [InlineData(new[] { "--optimizer", "kfac", "--metric-form", "covariance" }, "natgrad: error: --metric-form does not apply to kfac (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --mc-samples, --metric, --inverse-period, --factor-period, --factor-decay, --kl-clip, --kl-clip-form, --kfac-inverse, --kfac-damping, --factor-precision, --inverse-precision, --kfac-distribution, --factor-sync-every, --diagnostics-every)")]
    [InlineData(new[] { "--optimizer", "exact", "--max-exact-params", "10" }, "natgrad: error: exact NGD needs a dense 161×161 Fisher (161 covered parameters > the limit of 10); use block, tengrad, kfac or hf, or raise the limit (--max-exact-params / MaxExactParameters)")]
    [InlineData(new[] { "--kfac-inverse", "qr" }, "natgrad: error: --kfac-inverse: 'qr' is not one of eigen, cholesky")]
    [InlineData(new[] { "--kfac-distribution", "ring" }, "natgrad: error: --kfac-distribution: 'ring' is not one of inverse, gradient, replicated")]
    [InlineData(new[] { "--optimizer", "ekfac", "--kfac-distribution", "replicated", "--factor-sync-every", "2" }, "natgrad: error: --factor-sync-every does not apply to ekfac (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --mc-samples, --metric, --inverse-period, --factor-period, --factor-decay, --kl-clip, --kl-clip-form, --kfac-damping, --factor-precision, --inverse-precision, --kfac-distribution, --diagnostics-every)")]
    [InlineData(new[] { "--optimizer", "kfac", "--factor-sync-every", "0" }, "natgrad: error: --factor-sync-every must be ≥ 1, got 0")]
    [InlineData(new[] { "--optimizer", "tengrad", "--kfac-distribution", "gradient" }, "natgrad: error: --kfac-distribution does not apply to tengrad (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --mc-samples, --metric, --metric-form, --kl-clip, --diagnostics-every)")]
    [InlineData(new[] { "--optimizer", "kfac", "--kfac-inverse", "cholesky", "--kfac-damping", "eigenbasis" }, "natgrad: error: --kfac-damping Eigenbasis (1 / (eᴳᵢ eᴬⱼ + λ)) needs the factors' eigendecompositions: set InverseMethod = Eigen (natgrad: --kfac-inverse eigen), or use DampingMode Factored with Cholesky")]
    public void BadOption_PrintsOneLineNamingIt_ExitCode2(string[] extra, string expected) =>
        AssertUsageError(CliHarness.Run(Train(extra)), expected);

    [Fact]
    public void MissingData_IsReported() =>
        AssertUsageError(CliHarness.Run(new[] { "train" }), "natgrad: error: --data is required (or --resume DIR to continue a run)");

    [Fact]
    public void NoCommand_IsReported() =>
        AssertUsageError(CliHarness.Run(Array.Empty<string>()), "natgrad: error: Required command was not provided. (see 'natgrad --help')");

    [Fact]
    public void CsvPathWithoutTarget_AsksForTarget() =>
        AssertUsageError(CliHarness.Run(new[] { "train", "--data", "data/houses.csv" }),
            "natgrad: error: --target is required when --data is a file ('data/houses.csv')");

    [Fact]
    public void UnknownDataSet_ReportsTheLoadersMessage()
    {
        // DatasetCatalog.Load reports unknown names as a DataFormatException naming the name and the known sets.
        var outcome = CliHarness.Run(new[] { "train", "--data", "mnist" },
            (name, _) => throw new DataFormatException($"{name}: no such data set or file: the data sets are weather, wine"));
        AssertUsageError(outcome, "natgrad: error: mnist: no such data set or file: the data sets are weather, wine");
    }

    [Fact]
    public void BadDataFile_ReportsFileLineAndColumn()
    {
        var outcome = CliHarness.Run(new[] { "train", "--data", "bad.csv", "--target", "y" },
            (_, _) => throw new DataFormatException("bad.csv, line 7, column 3 (temp_max): non-numeric value \"n/a\""));
        AssertUsageError(outcome, "natgrad: error: bad.csv, line 7, column 3 (temp_max): non-numeric value \"n/a\"");
    }

    [Fact]
    public void DataOptions_AreBuiltFromTheCommandLine()
    {
        DataOptions? seen = null;
        string? seenName = null;
        var outcome = CliHarness.Run(new[] { "train", "--data", "my.csv", "--target", "price", "--ignore", "id, date", "--test-fraction", "0.3",
            "--max-train", "40", "--seed", "5", "--epochs", "1", "--out", CliHarness.TempDir() },
            (name, options) => { seenName = name; seen = options; return TinyData.Regression(); });
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal("my.csv", seenName);
        Assert.Equal("price", seen!.TargetColumn);
        Assert.Equal(new[] { "id", "date" }, seen.IgnoreColumns);
        Assert.Equal(0.3, seen.TestFraction);
        Assert.Equal(40, seen.MaxTrainExamples);
        Assert.Equal(5, seen.Seed);
    }

    [Fact]
    public void Divergence_ExitCode1_OneLine_AndPartialRunWritten()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(Train("--lr", "1e6", "--epochs", "50", "--batch-size", "16", "--out", dir));
        Assert.Equal(1, outcome.ExitCode);
        var line = Assert.Single(outcome.ErrorLines);
        Assert.StartsWith("natgrad: error: training diverged at step ", line);
        Assert.Contains("\"status\": \"diverged\"", File.ReadAllText(Path.Combine(dir, "metrics.json")));
    }

    [Fact]
    public void Help_OnEveryCommand_ExitCode0()
    {
        var root = CliHarness.Run(new[] { "--help" });
        Assert.Equal(0, root.ExitCode);
        Assert.Contains("train", root.Stdout);
        var train = CliHarness.Run(new[] { "train", "--help" });
        Assert.Equal(0, train.ExitCode);
        Assert.Empty(train.Stderr);
        foreach (var option in new[] { "--data", "--hidden", "--optimizer", "--lr-decay", "--damping-schedule", "--fisher", "--metric", "--kl-clip", "--hf-solver", "--out" })
            Assert.Contains(option, train.Stdout);
        Assert.Contains("[default: per method", train.Stdout);
    }
}
