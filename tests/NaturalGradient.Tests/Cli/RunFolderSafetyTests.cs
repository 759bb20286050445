using System.Security.Cryptography;
using NaturalGradient.Training.Data;

namespace NaturalGradient.Tests.Cli;

/// <summary>
/// A refused <c>natgrad train</c> leaves the output folder as it was: every check that can refuse (data, model,
/// method, resume checkpoint) runs before the folder is created, cleared or rewritten. Each case compares the SHA-256
/// of every file in the folder before and after the refused run.
/// </summary>
[Collection("Torch")]
public class RunFolderSafetyTests
{
    private static readonly string[] RunFiles =
        { "checkpoint.ngck", "config.json", "epochs.csv", "metrics.json", "model.json", "model.pt", "run.json", "steps.csv" };

    private static Dictionary<string, string> Hashes(string dir) => Directory.Exists(dir)
        ? Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))))
        : new Dictionary<string, string>();

    private static void AssertRefused(CliHarness.Outcome outcome, string expectedLine)
    {
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal(expectedLine, Assert.Single(outcome.ErrorLines));
    }

    /// <summary>A finished kfac run on the tiny regression set (48 rows, batch 16: 3 steps an epoch) in a fresh folder.</summary>
    private static string FinishedRun(string hidden = "8", string optimizer = "kfac", string? dir = null, params string[] extra)
    {
        dir ??= Path.Combine(CliHarness.TempDir(), "run");
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", optimizer, "--hidden", hidden, "--batch-size", "16",
            "--epochs", "2", "--threads", "1", "--out", dir }.Concat(extra).ToArray());
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Equal(RunFiles, Directory.GetFiles(dir).Select(Path.GetFileName).Order().ToArray());
        return dir;
    }

    private const string ExactLimit10 =
        "natgrad: error: exact NGD needs a dense 161×161 Fisher (161 covered parameters > the limit of 10); use block, tengrad, kfac or hf, or raise the limit (--max-exact-params / MaxExactParameters)";

    private const string KfacEigenbasis =
        "natgrad: error: --kfac-damping Eigenbasis (1 / (eᴳᵢ eᴬⱼ + λ)) needs the factors' eigendecompositions: set InverseMethod = Eigen (natgrad: --kfac-inverse eigen), or use DampingMode Factored with Cholesky";

    public static TheoryData<string[], string> LateErrorsWithForce => new()
    {
        { new[] { "--data", "bad.csv", "--target", "y" }, "natgrad: error: bad.csv, line 7, column 3 (temp_max): non-numeric value \"n/a\"" },
        { new[] { "--data", "tiny", "--model", "conv" }, "natgrad: error: --model conv needs image inputs c×h×w with h, w ≥ 4, but the data have input shape [3] ('tiny')" },
        { new[] { "--data", "tiny", "--optimizer", "kfac", "--kfac-damping", "eigenbasis" },
            KfacEigenbasis },
        { new[] { "--data", "tiny", "--optimizer", "exact", "--max-exact-params", "10" }, ExactLimit10 },
    };

    [Theory]
    [MemberData(nameof(LateErrorsWithForce))]
    public void Force_with_an_error_found_late_keeps_the_earlier_run_byte_identical(string[] options, string expected)
    {
        var dir = FinishedRun();
        var before = Hashes(dir);
        Func<string, DataOptions, Dataset> load = (name, _) => name == "bad.csv"
            ? throw new DataFormatException("bad.csv, line 7, column 3 (temp_max): non-numeric value \"n/a\"")
            : TinyData.Regression();

        var outcome = CliHarness.Run(new[] { "train" }.Concat(options).Concat(new[] { "--force", "--out", dir }).ToArray(), load);

        AssertRefused(outcome, expected);
        Assert.Equal(before, Hashes(dir));
    }

    [Fact]
    public void Force_with_a_missing_data_file_keeps_the_earlier_run_byte_identical()
    {
        var dir = FinishedRun();
        var before = Hashes(dir);
        var missing = Path.Combine(Path.GetDirectoryName(dir)!, "nofile.csv");

        var outcome = CliHarness.RunReal("train", "--data", missing, "--target", "y", "--force", "--out", dir);

        AssertRefused(outcome, $"natgrad: error: {missing}: no such data set or file: the data sets are weather, weather-class, wine, boston, fashion-mnist; otherwise give the path of a CSV file");
        Assert.Equal(before, Hashes(dir));
    }

    public static TheoryData<string[], string, string[]> MethodErrors => new()
    {
        // tiny: 3 inputs → hidden 6000 → 1 output: 3·6000 + 6000 + 6000 + 1 = 30001 parameters > the default limit of 20000.
        { new[] { "--optimizer", "exact", "--hidden", "6000" },
            "natgrad: error: exact NGD needs a dense 30001×30001 Fisher (30001 covered parameters > the limit of 20000); use block, tengrad, kfac or hf, or raise the limit (--max-exact-params / MaxExactParameters)",
            new[] { "--optimizer", "kfac", "--hidden", "6000" } },
        // The first layer alone holds 3·6000 + 6000 = 24000 parameters: one dense block beyond the limit.
        { new[] { "--optimizer", "block", "--hidden", "6000" },
            "natgrad: error: block NGD needs a dense 24000×24000 Fisher block for layer 'fc0' (24000 parameters > the limit of 20000); use tengrad, kfac or hf, or raise the limit (--max-exact-params / MaxExactParameters)",
            new[] { "--optimizer", "block", "--hidden", "8" } },
        // The default network (hidden 32): 3·32 + 32 + 32 + 1 = 161 parameters.
        { new[] { "--optimizer", "exact", "--max-exact-params", "10" }, ExactLimit10, new[] { "--optimizer", "exact", "--max-exact-params", "161" } },
        { new[] { "--optimizer", "kbfgs", "--fisher", "mc" }, "natgrad: error: --fisher: kbfgs builds its secant pairs from loss gradients: it needs the empirical Fisher (--fisher empirical)", new[] { "--optimizer", "kbfgs", "--fisher", "empirical" } },
        { new[] { "--optimizer", "kfac", "--kfac-damping", "eigenbasis" }, KfacEigenbasis, new[] { "--optimizer", "kfac", "--kfac-damping", "eigenbasis", "--kfac-inverse", "eigen" } },
    };

    [Theory]
    [MemberData(nameof(MethodErrors))]
    public void Method_error_writes_nothing_and_the_corrected_run_needs_no_force(string[] refused, string expected, string[] corrected)
    {
        var dir = Path.Combine(CliHarness.TempDir(), "run");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "the user's own file\n");
        var before = Hashes(dir);
        string[] common = { "train", "--data", "tiny", "--batch-size", "16", "--epochs", "1", "--threads", "1", "--out", dir };

        AssertRefused(CliHarness.Run(common.Concat(refused).ToArray()), expected);
        Assert.Equal(before, Hashes(dir));

        var retry = CliHarness.Run(common.Concat(corrected).ToArray());
        Assert.True(retry.ExitCode == 0, retry.Stderr);
        Assert.Equal(RunFiles.Append("notes.txt").Order(), Directory.GetFiles(dir).Select(Path.GetFileName).Order());
    }

    private const string OtherModel =
        "natgrad: error: --resume: the checkpoint is for the model mlp(hidden=[16], activation=tanh), but this run has mlp(hidden=[8], activation=tanh)";

    private const string OtherMethod = "natgrad: error: --resume: the checkpoint is for the method ekfac, but this run is kfac";

    [Theory]
    [InlineData("16", "kfac", null, OtherModel)]
    [InlineData("16", "kfac", "5", OtherModel)]      // --epochs would rewrite run.json: refused first
    [InlineData("8", "ekfac", null, OtherMethod)]
    public void Resume_with_another_runs_checkpoint_leaves_the_folder_byte_identical(string otherHidden, string otherMethod, string? epochs, string expected)
    {
        var dir = FinishedRun();
        var other = FinishedRun(otherHidden, otherMethod);
        File.Copy(Path.Combine(other, "checkpoint.ngck"), Path.Combine(dir, "checkpoint.ngck"), overwrite: true);
        var before = Hashes(dir);

        var args = new List<string> { "train", "--resume", dir };
        if (epochs is not null) args.AddRange(new[] { "--epochs", epochs });
        var outcome = CliHarness.Run(args.ToArray());

        AssertRefused(outcome, expected);
        Assert.Equal(before, Hashes(dir));
    }

    /// <summary>
    /// A checkpoint of the same method with another --damping: from another run's folder, or under a run.json whose
    /// --damping was changed. The refusal names the option, not the library's property; after run.json is given the
    /// checkpoint's value, as the line advises, the run continues.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Resume_with_another_damping_names_the_option_and_leaves_the_folder_byte_identical(bool copiedCheckpoint)
    {
        string dir;
        if (copiedCheckpoint)
        {
            dir = FinishedRun(extra: new[] { "--damping", "0.1" });
            var other = FinishedRun(extra: new[] { "--damping", "0.01" });
            File.Copy(Path.Combine(other, "checkpoint.ngck"), Path.Combine(dir, "checkpoint.ngck"), overwrite: true);
        }
        else
        {
            dir = FinishedRun(extra: new[] { "--damping", "0.01" });
            SetRunDamping(dir, "0.01", "0.1");
        }
        var before = Hashes(dir);

        var outcome = CliHarness.Run(new[] { "train", "--resume", dir, "--epochs", "3" });

        var runFile = Path.Combine(dir, "run.json");
        AssertRefused(outcome, "natgrad: error: --resume: the checkpoint is for the method kfac with --damping 0.01, but this run has --damping 0.1; " +
                               $"to continue from the checkpoint, set its values in {runFile}, or start a new run without --resume");
        Assert.Equal(before, Hashes(dir));

        SetRunDamping(dir, "0.1", "0.01");
        var continued = CliHarness.Run(new[] { "train", "--resume", dir, "--epochs", "3" });
        Assert.True(continued.ExitCode == 0, continued.Stderr);
    }

    /// <summary>The run's own command line does not give --damping: its value is kfac's default, and the line says so.</summary>
    [Fact]
    public void Resume_refusal_marks_a_value_the_run_did_not_type_as_the_default()
    {
        var dir = FinishedRun();
        var other = FinishedRun(extra: new[] { "--damping", "0.1" });
        File.Copy(Path.Combine(other, "checkpoint.ngck"), Path.Combine(dir, "checkpoint.ngck"), overwrite: true);
        var before = Hashes(dir);

        var outcome = CliHarness.Run(new[] { "train", "--resume", dir, "--epochs", "3" });

        AssertRefused(outcome, "natgrad: error: --resume: the checkpoint is for the method kfac with --damping 0.1, but this run has --damping 0.01 (the default); " +
                               $"to continue from the checkpoint, set its values in {Path.Combine(dir, "run.json")}, or start a new run without --resume");
        Assert.Equal(before, Hashes(dir));
    }

    /// <summary>Replaces the value of --damping in the arguments of the folder's run.json.</summary>
    private static void SetRunDamping(string dir, string from, string to)
    {
        var path = Path.Combine(dir, "run.json");
        var run = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        var arguments = run["Arguments"]!.AsArray();
        int at = arguments.Select(a => a!.GetValue<string>()).ToList().IndexOf("--damping");
        Assert.Equal(from, arguments[at + 1]!.GetValue<string>());
        arguments[at + 1] = to;
        File.WriteAllText(path, run.ToJsonString());
    }
}
