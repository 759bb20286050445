using System.CommandLine;
using NaturalGradient.Cli;
using NaturalGradient.Cli.Commands;
using NaturalGradient.Training.Experiments.Paths;
using NaturalGradient.Tests.Cli;

namespace NaturalGradient.Tests.Paths;

/// <summary><c>natgrad paths</c> through <see cref="PathsCommand.Create"/> under a root command, as the CLI wires it.</summary>
public class PathsCommandTests
{
    private static (int Code, string Stdout) Invoke(params string[] args)
    {
        var root = new RootCommand { PathsCommand.Create() };
        var parse = root.Parse(args);
        Assert.Empty(parse.Errors);
        var stdout = new StringWriter();
        int code = parse.Invoke(new InvocationConfiguration { Output = stdout, Error = new StringWriter(), EnableDefaultExceptionHandler = false });
        return (code, stdout.ToString());
    }

    [Fact]
    public void QuickRun_WritesPngCsvAndSummary_Atomically()
    {
        var dir = Path.Combine(CliHarness.TempDir(), "nested", "out");
        var (code, stdout) = Invoke("paths", "--out", dir, "--quick", "--steps", "30");
        Assert.Equal(0, code);

        var png = File.ReadAllBytes(Path.Combine(dir, "paths.png"));
        Assert.True(png.Length > 10_000, $"paths.png has only {png.Length} bytes");
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);

        var csv = File.ReadAllLines(Path.Combine(dir, "paths.csv"));
        Assert.Equal("method,start,step,b,w,loss", csv[0]);
        Assert.Equal(1 + 2 * 4 * 31, csv.Length);
        Assert.Contains("newton,A,0,-3,1,", csv[1]);
        var methods = csv.Skip(1).Select(l => l.Split(',')[0]).Distinct().Order().ToArray();
        Assert.Equal(new[] { "gradient-descent", "le-roux", "natural-gradient", "newton" }, methods);
        Assert.All(csv.Skip(1), l => Assert.True(double.IsFinite(double.Parse(l.Split(',')[5], System.Globalization.CultureInfo.InvariantCulture))));

        var md = File.ReadAllText(Path.Combine(dir, "paths.md"));
        Assert.Contains("x̂ = w·σ(w·x + b) − b", md);
        Assert.Contains("| B (3, -1) | Natural gradient (Amari) | 0.5 | 0.01 |", md);
        Assert.Equal(8, md.Split('\n').Count(l => l.StartsWith("| A (") || l.StartsWith("| B (")));

        Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories).Concat(Directory.GetFiles(dir, ".*")));
        Assert.Contains("wrote paths.png, paths.csv, paths.md", stdout);
        Assert.Contains("natural-gradient", stdout);
    }

    [Theory]
    [InlineData("--steps", "0", "--steps must be in [1, 100000], got 0")]
    [InlineData("--grid", "5", "--grid must be in [10, 2000], got 5")]
    [InlineData("--seed", "-1", "--seed must be ≥ 0, got -1")]
    public void BadValues_ThrowUsageException(string option, string value, string message)
    {
        var dir = CliHarness.TempDir();
        var e = Assert.Throws<UsageException>(() => Invoke("paths", "--out", dir, "--quick", option, value));
        Assert.Equal(message, e.Message);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void OutIsAFile_ThrowsUsageException()
    {
        var file = Path.Combine(CliHarness.TempDir(), "taken");
        File.WriteAllText(file, "x");
        var e = Assert.Throws<UsageException>(() => Invoke("paths", "--out", file, "--quick"));
        Assert.Equal($"--out: '{file}' is a file, not a folder", e.Message);
    }

    [Fact]
    public void ParseErrors_NameTheOption()
    {
        var root = new RootCommand { PathsCommand.Create() };
        Assert.Contains(root.Parse(new[] { "paths", "--out", "x", "--steps", "ten" }).Errors, e => e.Message == "--steps: 'ten' is not an integer");
        Assert.Contains(root.Parse(new[] { "paths" }).Errors, e => e.Message.Contains("--out"));
    }

    [Fact]
    public void Plot_DrawsStoppedAndOneStepPaths()
    {
        var surface = AutoencoderSurface.Sample(0);
        var stopped = PathRunner.Run(surface, new PathMethodSettings(PathMethod.GradientDescent, 1e300, 0), PathStart.Defaults[0], 5);
        Assert.True(stopped.Stopped);
        var oneStep = PathRunner.Run(surface, PathMethodSettings.Default(PathMethod.Newton), PathStart.Defaults[1], 1);
        var runs = new[] { stopped, oneStep };
        var settings = new PathsSettings(CliHarness.TempDir(), 1, 0, 10, Quick: true);
        var result = new PathsResult(settings, surface, runs, runs.Select(t => PathRunner.Summarize(surface, t)).ToList(),
            surface.Grid(-4, 4, -4, 4, 10), []);
        var png = PathsPlot.RenderPng(result);
        Assert.Equal(0x89, png[0]);
        Assert.Contains("stopped before step 1", PathsReport.Markdown(result));
    }
}
