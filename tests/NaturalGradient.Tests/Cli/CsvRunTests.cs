using System.Globalization;
using System.Text;

namespace NaturalGradient.Tests.Cli;

/// <summary>natgrad train through the real loader on tiny CSV files.</summary>
[Collection("Torch")]
public class CsvRunTests
{
    private static string WriteCsv(string dir, int rows, Func<int, string>? badCell = null)
    {
        var sb = new StringBuilder("id,x1,x2,y\n");
        for (int i = 0; i < rows; i++)
        {
            double x1 = Math.Sin(i), x2 = Math.Cos(3 * i);
            var x2Text = badCell?.Invoke(i) ?? x2.ToString("R", CultureInfo.InvariantCulture);
            sb.Append(CultureInfo.InvariantCulture, $"{i},{x1:R},{x2Text},{2 * x1 - x2:R}\n");
        }
        var path = Path.Combine(dir, "tiny.csv");
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    [Fact]
    public void TrainOnCsv_WritesRunFolder()
    {
        var dir = CliHarness.TempDir();
        var csv = WriteCsv(dir, 40);
        var outDir = Path.Combine(dir, "run");
        var outcome = CliHarness.RunReal("train", "--data", csv, "--target", "y", "--ignore", "id", "--test-fraction", "0.25",
            "--batch-size", "10", "--epochs", "2", "--out", outDir);
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Equal(1 + 2 * 3, File.ReadAllLines(Path.Combine(outDir, "steps.csv")).Length);   // 30 train rows, batch 10
        Assert.Equal(1 + 3, File.ReadAllLines(Path.Combine(outDir, "epochs.csv")).Length);
    }

    [Fact]
    public void BadCell_ReportsFileLineAndColumn_ExitCode2()
    {
        var dir = CliHarness.TempDir();
        var csv = WriteCsv(dir, 20, i => i == 5 ? "n/a" : null!);
        var outcome = CliHarness.RunReal("train", "--data", csv, "--target", "y", "--out", Path.Combine(dir, "run"));
        Assert.Equal(2, outcome.ExitCode);
        var line = Assert.Single(outcome.ErrorLines);
        Assert.StartsWith("natgrad: error: ", line);
        Assert.Contains("line 7", line);          // header is line 1, row i = 5 is line 7
        Assert.Contains("column 3", line);
        Assert.False(Directory.Exists(Path.Combine(dir, "run")));
    }

    [Fact]
    public void UnknownDataSetName_ExitCode2()
    {
        var outcome = CliHarness.RunReal("train", "--data", "no-such-set");
        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith("natgrad: error: no-such-set", Assert.Single(outcome.ErrorLines));
    }
}
