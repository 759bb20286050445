using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using NaturalGradient.Cli.Commands;

namespace NaturalGradient.Tests.Cli;

/// <summary>
/// The run lifecycle of <c>natgrad train</c> end to end: a child process interrupted with SIGINT leaves a consistent
/// folder with a checkpoint, and <c>natgrad train --resume</c> finishes it with the same steps and the same weights as
/// the run that never stopped; a damaged checkpoint is refused with one line and nothing on disk changes.
/// </summary>
[Collection("Torch")]
public class RunLifecycleTests
{
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int Sigint = 2, Sigterm = 15;

    private static string Csv(string dir, int rows = 160)
    {
        var random = new Random(4);
        var lines = new List<string> { "a,b,c,y" };
        for (int i = 0; i < rows; i++)
        {
            double a = random.NextDouble(), b = random.NextDouble(), c = random.NextDouble();
            lines.Add(FormattableString.Invariant($"{a:R},{b:R},{c:R},{Math.Sin(3 * a) + b * c:R}"));
        }
        var path = Path.Combine(dir, "data.csv");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string[] TrainArgs(string csv, string outDir) => new[]
    {
        "train", "--data", csv, "--target", "y", "--optimizer", "kfac", "--hidden", "12", "--epochs", "40", "--batch-size", "8",
        "--threads", "1", "--seed", "3", "--checkpoint-every", "40", "--out", outDir,
    };

    private static Process Start(IEnumerable<string> args)
    {
        var exe = NatgradExecutable.Resolve();
        // A process started from a shell without job control (a CI runner's background job) inherits SIGINT as
        // ignored, and exec keeps it ignored; coreutils' env restores the default disposition so that the child sees
        // Ctrl-C as a terminal user's run would.
        var info = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("--default-signal=INT");
        info.ArgumentList.Add(exe.FileName);
        foreach (var a in exe.With(args)) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    private static (int Code, string Stderr) Finish(Process p)
    {
        var stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(8)), "natgrad did not finish");
        return (p.ExitCode, stderr.Result);
    }

    private static string[] Losses(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "steps.csv")).Skip(1).Select(l => l.Split(',')[2]).ToArray();

    [Theory]
    [InlineData(Sigint)]
    [InlineData(Sigterm)]
    public void Signalled_run_leaves_a_checkpoint_and_resumes_to_the_uninterrupted_result(int signal)
    {
        var root = CliHarness.TempDir();
        var csv = Csv(root);
        string straight = Path.Combine(root, "straight"), broken = Path.Combine(root, "broken");

        var reference = Finish(Start(TrainArgs(csv, straight)));
        Assert.True(reference.Code == 0, reference.Stderr);

        using (var child = Start(TrainArgs(csv, broken)))
        {
            var steps = Path.Combine(broken, "steps.csv");
            var clock = Stopwatch.StartNew();
            // steps.csv is streamed: wait until the run is well under way, then signal it.
            while (!child.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)
                   && (!File.Exists(steps) || File.ReadLines(steps).Count() < 25))
                Thread.Sleep(20);
            Assert.False(child.HasExited, "the run finished before it could be interrupted");
            Assert.Equal(0, kill(child.Id, signal));
            var (code, stderr) = Finish(child);
            Assert.Equal(130, code);
            var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Matches($@"^natgrad: interrupted after step \d+; checkpoint written to {System.Text.RegularExpressions.Regex.Escape(Path.Combine(broken, "checkpoint.ngck"))} \(continue with: natgrad train --resume {System.Text.RegularExpressions.Regex.Escape(broken)}\)$", line);
        }
        Assert.Contains("\"status\": \"interrupted\"", File.ReadAllText(Path.Combine(broken, "metrics.json")));
        int recorded = Losses(broken).Length;
        Assert.True(recorded < Losses(straight).Length);

        var resumed = Finish(Start(new[] { "train", "--resume", broken }));
        Assert.True(resumed.Code == 0, resumed.Stderr);
        Assert.Equal(Losses(straight), Losses(broken));
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "model.pt")), File.ReadAllBytes(Path.Combine(broken, "model.pt")));
        Assert.Equal(File.ReadAllLines(Path.Combine(straight, "epochs.csv")).Select(l => string.Join(",", l.Split(',')[..5])),
            File.ReadAllLines(Path.Combine(broken, "epochs.csv")).Select(l => string.Join(",", l.Split(',')[..5])));
    }

    [Fact]
    public void Damaged_checkpoint_is_refused_with_one_line_and_nothing_changes()
    {
        var root = CliHarness.TempDir();
        var csv = Csv(root, rows: 40);
        var dir = Path.Combine(root, "run");
        var args = new[] { "train", "--data", csv, "--target", "y", "--optimizer", "ekfac", "--epochs", "2", "--out", dir };
        Assert.Equal(0, CliHarness.RunReal(args).ExitCode);
        var checkpoint = Path.Combine(dir, "checkpoint.ngck");
        var bytes = File.ReadAllBytes(checkpoint);
        File.WriteAllBytes(checkpoint, bytes[..(bytes.Length - 7)]);
        var before = Directory.GetFiles(dir).ToDictionary(f => f, File.ReadAllBytes);

        var outcome = CliHarness.RunReal("train", "--resume", dir);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal($"natgrad: error: --resume: checkpoint {checkpoint} is truncated or has trailing bytes ({bytes.Length - 57} payload bytes, expected {bytes.Length - 50})",
            Assert.Single(outcome.ErrorLines));
        Assert.Equal(before.Keys.Order(), Directory.GetFiles(dir).Order());
        foreach (var (file, content) in before) Assert.Equal(content, File.ReadAllBytes(file));
    }

    [Fact]
    public void Completed_run_resumed_asks_for_more_epochs_and_other_options_are_refused()
    {
        var root = CliHarness.TempDir();
        var csv = Csv(root, rows: 40);
        var dir = Path.Combine(root, "run");
        Assert.Equal(0, CliHarness.RunReal("train", "--data", csv, "--target", "y", "--optimizer", "sgd", "--epochs", "1", "--out", dir).ExitCode);
        var outcome = CliHarness.RunReal("train", "--resume", dir);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal("natgrad: error: --resume: the checkpoint's run already completed 1 epochs; ask for more than 1 epochs to continue it", Assert.Single(outcome.ErrorLines));
        outcome = CliHarness.RunReal("train", "--resume", dir, "--lr", "0.5");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal($"natgrad: error: --resume takes no other options than --epochs (got --lr): the run continues with its own (from {Path.Combine(dir, "run.json")})", Assert.Single(outcome.ErrorLines));
        outcome = CliHarness.RunReal("train", "--resume", dir, "--epochs", "3", "--inverse-precision", "bfloat16", "--lr", "0.5");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal($"natgrad: error: --resume takes no other options than --epochs (got --inverse-precision, --lr): the run continues with its own (from {Path.Combine(dir, "run.json")})", Assert.Single(outcome.ErrorLines));

        // More epochs continue the completed run: epochs.csv gains a row, steps.csv the steps of epoch 2.
        outcome = CliHarness.RunReal("train", "--resume", dir, "--epochs", "2");
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Equal(1 + 3, File.ReadAllLines(Path.Combine(dir, "epochs.csv")).Length);
        Assert.Contains("\"2\"", File.ReadAllText(Path.Combine(dir, "run.json")));
        outcome = CliHarness.RunReal("train", "--resume", root);
        Assert.Equal($"natgrad: error: --resume '{root}' holds no natgrad run (run.json is missing)", Assert.Single(outcome.ErrorLines));
    }
}
