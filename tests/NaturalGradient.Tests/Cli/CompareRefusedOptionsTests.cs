using System.Text.RegularExpressions;
using NaturalGradient.Training.Data;

namespace NaturalGradient.Tests.Cli;

/// <summary>
/// <c>natgrad compare</c> refuses the <c>train</c> options it does not read — one line naming the option and what
/// compare takes instead, exit code 2, before any data is loaded or anything written — and its help lists none of them.
/// </summary>
[Collection("Torch")]
public class CompareRefusedOptionsTests
{
    private static readonly string[] NotRead = { "--optimizer", "--lr", "--seed", "--batch-size", "--resume", "--checkpoint-every", "--force", "--diagnostics-every",
        "--kfac-distribution", "--factor-sync-every" };

    [Theory]
    [InlineData(new[] { "--optimizer", "adam" }, "natgrad: error: --optimizer: compare takes --optimizers")]
    [InlineData(new[] { "--lr", "0.1" }, "natgrad: error: --lr: compare takes learning rates from --lr-grid")]
    [InlineData(new[] { "--seed", "3" }, "natgrad: error: --seed: compare takes --seeds")]
    [InlineData(new[] { "--batch-size", "16" }, "natgrad: error: --batch-size: compare takes --batch-sizes")]
    [InlineData(new[] { "--resume", "runs/x" }, "natgrad: error: --resume: compare resumes by itself: repeat the command with the same --out (finished runs are cached)")]
    [InlineData(new[] { "--checkpoint-every", "1" }, "natgrad: error: --checkpoint-every: compare writes no checkpoints; it caches each finished run under --out/runs, and a repeated command computes only the rest")]
    [InlineData(new[] { "--force" }, "natgrad: error: --force: compare reuses the finished runs in --out; to recompute them give another --out or delete its runs folder")]
    [InlineData(new[] { "--diagnostics-every", "5" }, "natgrad: error: --diagnostics-every: compare records no approximation diagnostics; use natgrad train --diagnostics-every N")]
    [InlineData(new[] { "--kfac-distribution", "gradient" }, "natgrad: error: --kfac-distribution: compare trains in one process; the K-FAC work distribution applies to natgrad train under mpirun")]
    [InlineData(new[] { "--seed", "3", "--lr", "0.1" }, "natgrad: error: --seed: compare takes --seeds")]
    public void A_train_only_option_is_refused_before_any_work(string[] extra, string expected)
    {
        var outDir = Path.Combine(CliHarness.TempDir(), "cmp");
        int loads = 0;
        var outcome = CliHarness.Run(
            new[] { "compare", "--data", "tiny", "--optimizers", "sgd", "--lr-grid", "0.1", "--seeds", "0", "--epochs", "1", "--out", outDir }.Concat(extra).ToArray(),
            (_, _) => { loads++; return TinyData.Regression(); });
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal(expected, Assert.Single(outcome.ErrorLines));
        Assert.Equal(0, loads);
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(outcome.Stdout);
    }

    [Fact]
    public void Compare_help_lists_only_the_options_compare_reads()
    {
        var help = CliHarness.Run(new[] { "compare", "--help" });
        Assert.Equal(0, help.ExitCode);
        foreach (var option in NotRead)
            Assert.DoesNotMatch(new Regex(Regex.Escape(option) + @"(?![\w-])"), help.Stdout);
        foreach (var option in new[] { "--optimizers", "--lr-grid", "--seeds", "--batch-sizes", "--select", "--quick", "--epochs", "--data", "--out", "--damping", "--tensorboard" })
            Assert.Matches(new Regex(Regex.Escape(option) + @"(?![\w-])"), help.Stdout);
        Assert.Contains("runs/compare-<data>", help.Stdout);
        Assert.DoesNotContain("runs/<data>-<optimizer>", help.Stdout);
    }
}
