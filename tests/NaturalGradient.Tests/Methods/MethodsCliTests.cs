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
            "--epochs", "2", "--batch-sizes", "16", "--damping", "0.1", "--threads", "1", "--out", dir,
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

    [Fact]
    public void Train_HfWithAPreconditioner_ReportsTheUnpreconditionedIterations_OnTheDiagnosticsSteps()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", "hf", "--hf-preconditioner", "kfac", "--hf-tol", "1e-2",
            "--diagnostics-every", "2", "--epochs", "2", "--batch-size", "16", "--threads", "1", "--out", dir,
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var rows = File.ReadAllLines(Path.Combine(dir, "steps.csv"));
        int column = Array.IndexOf(rows[0].Split(','), "solver_iterations_unpreconditioned");
        int solver = Array.IndexOf(rows[0].Split(','), "solver_iterations");
        var cells = rows.Skip(1).Select(r => r.Split(',')).ToList();
        Assert.True(cells.Count >= 4);
        for (int i = 0; i < cells.Count; i++)
            Assert.Equal(i % 2 == 0, cells[i][column].Length > 0);            // steps 1, 3, 5, …
        var saved = cells.Where(c => c[column].Length > 0).Select(c => int.Parse(c[column]) - int.Parse(c[solver])).ToList();
        using var metrics = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")));
        Assert.Equal(saved.Count, metrics.RootElement.GetProperty("solver_reference_steps").GetInt32());
        Assert.Equal(saved.Average(), metrics.RootElement.GetProperty("solver_iterations_saved_mean").GetDouble(), 1e-9);
        Assert.Contains(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{saved.Average():F1} per step ("), outcome.Stdout);

        var plainDir = CliHarness.TempDir();
        var plain = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", "hf", "--diagnostics-every", "2", "--epochs", "1",
            "--batch-size", "16", "--threads", "1", "--out", plainDir,
        });
        Assert.True(plain.ExitCode == 0, plain.Stderr);
        Assert.All(File.ReadAllLines(Path.Combine(plainDir, "steps.csv")).Skip(1), r => Assert.EndsWith(",", r));
    }

    [Fact]
    public void Check_PrintsOneRowPerLayer_AndRefusesHessianFree()
    {
        var outcome = CliHarness.Run(new[] { "check", "--data", "tiny", "--hidden", "4", "--optimizer", "kfac", "--batch-size", "16", "--damping", "0.1", "--threads", "1" });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var lines = outcome.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.StartsWith("fc0 ") && l.Contains("E-0") || l.StartsWith("fc0 ") && l.Contains("E+0"));
        Assert.Contains(lines, l => l.StartsWith("fc1 "));
        var hf = CliHarness.Run(new[] { "check", "--data", "tiny", "--optimizer", "hf" });
        Assert.Equal(2, hf.ExitCode);
        Assert.StartsWith("natgrad: error: --optimizer: check needs a method with per-layer blocks", hf.ErrorLines[0]);
    }

    [Fact]
    public void Train_DiagnosticsEvery_WritesApproximationCsvAndPlot_OnSteps1And1PlusN()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", "kfac", "--epochs", "2", "--batch-size", "16",
            "--damping", "0.1", "--diagnostics-every", "3", "--threads", "1", "--out", dir,
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var rows = File.ReadAllLines(Path.Combine(dir, "approximation.csv"));
        Assert.Equal("step,layer,parameters,relative_frobenius_error,direction_cosine", rows[0]);
        var steps = rows.Skip(1).Select(r => int.Parse(r.Split(',')[0])).Distinct().ToList();
        Assert.Equal(steps.Count, steps.Where(s => (s - 1) % 3 == 0).Count());
        Assert.Equal(1, steps[0]);
        Assert.True(steps.Count >= 2);
        Assert.True(File.Exists(Path.Combine(dir, "approximation.png")));
        Assert.False(File.Exists(Path.Combine(CliHarness.TempDir(), "approximation.csv")));
    }
}
