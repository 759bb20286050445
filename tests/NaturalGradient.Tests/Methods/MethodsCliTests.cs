using NaturalGradient.Tests.Cli;

namespace NaturalGradient.Tests.Methods;

/// <summary>The new methods through the command line: compare runs them, train logs auto's choices, HF takes the K-FAC preconditioner.</summary>
[Collection("Torch")]
public class MethodsCliTests
{
    [Fact]
    public void Compare_RunsKbfgsKsdAndAuto()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[]
        {
            "compare", "--data", "tiny", "--hidden", "4", "--optimizers", "kbfgs,ksd,auto", "--lr-grid", "0.1", "--seeds", "0",
            "--epochs", "2", "--batch-size", "16", "--batch-sizes", "16", "--damping", "0.1", "--threads", "1", "--out", dir,
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Contains("3 runs computed, 0 cached", outcome.Stdout);
        var runs = File.ReadAllText(Path.Combine(dir, "runs.csv"));
        foreach (var method in new[] { "kbfgs", "ksd", "auto" }) Assert.Contains(method, runs);
    }

    [Fact]
    public void Train_Auto_PrintsEachLayersChoice()
    {
        var outcome = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", "auto", "--epochs", "1", "--batch-size", "16",
            "--damping", "0.1", "--threads", "1", "--out", CliHarness.TempDir(),
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Contains("auto: fc0: ", outcome.Stdout);
        Assert.Contains("auto: fc1: ", outcome.Stdout);
    }

    [Fact]
    public void Train_HfWithTheKfacPreconditioner_Runs_AndRefusesItBesideTheDiagonal()
    {
        var ok = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", "hf", "--hf-preconditioner", "kfac", "--hf-solver", "minres-qlp",
            "--epochs", "1", "--batch-size", "16", "--damping", "0.1", "--threads", "1", "--out", CliHarness.TempDir(),
        });
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        var bad = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--optimizer", "hf", "--hf-preconditioner", "kfac", "--hf-diagonal", "--epochs", "1", "--out", CliHarness.TempDir(),
        });
        Assert.Equal(2, bad.ExitCode);
        Assert.StartsWith("natgrad: error: --hf-preconditioner", bad.ErrorLines[0]);
    }
}
