using NaturalGradient.Tests.Cli;

namespace NaturalGradient.Tests.Compare;

[Collection("Torch")]
public class CompareCommandTests
{
    private static string[] Args(string outDir, string optimizers) => new[]
    {
        "compare", "--data", "tiny", "--hidden", "4", "--optimizers", optimizers, "--lr-grid", "0.1,0.03", "--seeds", "0,1",
        "--epochs", "2", "--batch-sizes", "16", "--threads", "1", "--out", outDir,
    }.Concat(optimizers == "sgd" ? Array.Empty<string>() : new[] { "--fisher", "exact", "--damping", "0.1" }).ToArray();

    private static Dictionary<string, DateTime> ResultStamps(string outDir) =>
        Directory.GetFiles(Path.Combine(outDir, "runs"), "result.json", SearchOption.AllDirectories).ToDictionary(f => f, File.GetLastWriteTimeUtc);

    [Fact]
    public void Compare_WritesEveryFile_AndARepeatRecomputesNothing()
    {
        var dir = CliHarness.TempDir();
        var first = CliHarness.Run(Args(dir, "sgd,tengrad"));
        Assert.True(first.ExitCode == 0, first.Stderr);
        foreach (var f in new[] { "report.md", "runs.csv", "curves.csv", "compare.json", "loss_vs_steps.png", "loss_vs_time.png", "grid.png" })
            Assert.True(File.Exists(Path.Combine(dir, f)), f);
        var png = File.ReadAllBytes(Path.Combine(dir, "loss_vs_steps.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png.Take(4).ToArray());
        Assert.Equal(1 + 2 * 2 * 2, File.ReadAllLines(Path.Combine(dir, "runs.csv")).Length);
        Assert.Contains("8 runs computed, 0 cached", first.Stdout);
        var stamps = ResultStamps(dir);

        var again = CliHarness.Run(Args(dir, "sgd,tengrad"));
        Assert.Contains("0 runs computed, 8 cached", again.Stdout);
        Assert.Equal(stamps, ResultStamps(dir));

        var more = CliHarness.Run(Args(dir, "sgd,tengrad,kfac"));
        Assert.Contains("4 runs computed, 8 cached", more.Stdout);
        Assert.Equal(12, ResultStamps(dir).Count);
    }

    [Fact]
    public void Compare_RecomputesARunWhoseFolderIsIncomplete()
    {
        var dir = CliHarness.TempDir();
        Assert.Equal(0, CliHarness.Run(Args(dir, "sgd")).ExitCode);
        var results = Directory.GetFiles(Path.Combine(dir, "runs"), "result.json", SearchOption.AllDirectories);
        File.Delete(results[0]);
        File.WriteAllText(results[1], "{ not json");
        var again = CliHarness.Run(Args(dir, "sgd"));
        Assert.Contains("2 runs computed, 2 cached", again.Stdout);
    }

    [Theory]
    [InlineData(new[] { "--optimizers", "sgd,lbfgs" }, "natgrad: error: --optimizers: 'lbfgs' is not one of")]
    [InlineData(new[] { "--lr-grid", "0.1,x" }, "natgrad: error: --lr-grid: 'x' is not a number")]
    [InlineData(new[] { "--lr-grid", "sgd=-1" }, "natgrad: error: --lr-grid: learning rates must be finite numbers > 0 (sgd)")]
    [InlineData(new[] { "--batch-sizes", "0" }, "natgrad: error: --batch-sizes: batch sizes must be ≥ 1")]
    [InlineData(new[] { "--select", "speed" }, "natgrad: error: --select: 'speed' is not one of train-loss, test-loss, test-accuracy")]
    public void BadOptions_OneLine_ExitCode2(string[] extra, string expectedStart)
    {
        var outcome = CliHarness.Run(new[] { "compare", "--data", "tiny", "--epochs", "1", "--out", CliHarness.TempDir() }.Concat(extra).ToArray());
        Assert.Equal(2, outcome.ExitCode);
        Assert.Single(outcome.ErrorLines);
        Assert.StartsWith(expectedStart, outcome.ErrorLines[0]);
    }
}
