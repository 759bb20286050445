using System.Globalization;
using System.Text;
using NaturalGradient.Tests.Cli;
using NaturalGradient.Training.TensorBoard;

namespace NaturalGradient.Tests.Observability;

[Collection("Torch")]
public class TensorBoardTests
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    [Fact]
    public void Crc32C_MatchesTheCastagnoliCheckValueAndTheIndependentTable()
    {
        var check = Encoding.ASCII.GetBytes("123456789");
        Assert.Equal(0xe3069283u, TfRecord.Crc32C(check));           // the CRC-32C catalogue's check value
        Assert.Equal(0xe3069283u, EventFileReader.Crc32C(check));
        var random = new byte[1001];
        new Random(5).NextBytes(random);
        for (int n = 0; n <= random.Length; n += 77)
            Assert.Equal(EventFileReader.Crc32C(random.AsSpan(0, n)), TfRecord.Crc32C(random.AsSpan(0, n)));
    }

    [Fact]
    public void Writer_FileStartsWithTheVersionEvent_AndRoundTripsScalars()
    {
        var dir = CliHarness.TempDir();
        string path;
        using (var w = new TensorBoardWriter(dir))
        {
            path = w.FilePath;
            w.AddScalar("a/x", 1.5, 3);
            w.AddScalars(40_000_000_000L, new[] { ("a/x", -2.25), ("b/y", double.NaN) });
        }
        Assert.StartsWith("events.out.tfevents.", Path.GetFileName(path));
        var events = EventFileReader.Read(path);
        Assert.Equal(3, events.Count);
        Assert.Equal("brain.Event:2", events[0].FileVersion);
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        Assert.All(events, e => Assert.InRange(e.WallTime, now - 60, now + 1));   // seconds since the Unix epoch
        Assert.Equal(new[] { (3L, 1.5f), (40_000_000_000L, -2.25f) }, EventFileReader.Series(events, "a/x"));
        Assert.True(float.IsNaN(Assert.Single(EventFileReader.Series(events, "b/y")).Value));
    }

    [Fact]
    public void Train_TensorBoard_SeriesEqualStepsAndEpochsCsv()
    {
        var dir = CliHarness.TempDir();
        var tb = Path.Combine(dir, "tb");
        var outcome = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--optimizer", "hf", "--damping-schedule", "lm", "--damping", "0.1", "--lr", "0.5",
            "--hidden", "6", "--batch-size", "20", "--epochs", "3", "--out", Path.Combine(dir, "run"), "--tensorboard", tb,
        }, (_, _) => TinyData.Classification());
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);

        var file = Assert.Single(Directory.GetFiles(tb));
        var events = EventFileReader.Read(file);
        var steps = Csv(Path.Combine(dir, "run", "steps.csv"));
        Assert.Equal(9, steps.Count);                        // 60 rows / 20 = 3 steps × 3 epochs

        void SameAsColumn(string tag, string column)
        {
            var series = EventFileReader.Series(events, tag);
            var expected = steps.Where(r => r[column] != "").Select(r => (long.Parse(r["step"], Inv), (float)double.Parse(r[column], Inv))).ToList();
            Assert.NotEmpty(expected);
            Assert.Equal(expected, series);
        }
        SameAsColumn(TensorBoardProgress.Tags.BatchLoss, "loss");
        SameAsColumn(TensorBoardProgress.Tags.LearningRate, "lr");
        SameAsColumn(TensorBoardProgress.Tags.Damping, "damping");
        SameAsColumn(TensorBoardProgress.Tags.Rho, "rho");
        SameAsColumn(TensorBoardProgress.Tags.PredictedKl, "predicted_kl");
        SameAsColumn(TensorBoardProgress.Tags.SolverIterations, "solver_iterations");
        // steps.csv rounds times to µs; the event file keeps float32 of the exact value.
        var stepMs = EventFileReader.Series(events, TensorBoardProgress.Tags.StepMs);
        Assert.Equal(steps.Select(r => double.Parse(r["step_ms"], Inv)), stepMs.Select(p => Math.Round(p.Value, 3)), new Tolerance(1.5e-3));
        Assert.Equal(9, EventFileReader.Series(events, TensorBoardProgress.Tags.CurvatureMs).Count);
        Assert.True(steps.Select(r => double.Parse(r["damping"], Inv)).Distinct().Count() > 1, "LM damping should move");

        var epochs = Csv(Path.Combine(dir, "run", "epochs.csv"));
        Assert.Equal(4, epochs.Count);
        var accuracy = EventFileReader.Series(events, TensorBoardProgress.Tags.TestAccuracy);
        Assert.Equal(epochs.Select(r => (long.Parse(r["epoch"], Inv) * 3, (float)double.Parse(r["test_accuracy"], Inv))), accuracy);
        var trainLoss = EventFileReader.Series(events, TensorBoardProgress.Tags.TrainLoss);
        Assert.Equal(epochs.Select(r => (long.Parse(r["epoch"], Inv) * 3, (float)double.Parse(r["train_loss"], Inv))), trainLoss);
        Assert.Equal(4, EventFileReader.Series(events, TensorBoardProgress.Tags.TestLoss).Count);
    }

    [Fact]
    public void Train_TensorBoard_AsksForThePredictedKl_WhichTheStepOtherwiseSkips()
    {
        var dir = CliHarness.TempDir();
        string[] args = { "train", "--data", "tiny", "--optimizer", "tengrad", "--epochs", "1", "--batch-size", "16" };
        var plain = CliHarness.Run(args.Concat(new[] { "--out", Path.Combine(dir, "plain") }).ToArray());
        var logged = CliHarness.Run(args.Concat(new[] { "--out", Path.Combine(dir, "tb"), "--tensorboard", Path.Combine(dir, "events") }).ToArray());
        Assert.Equal(0, plain.ExitCode);
        Assert.Equal(0, logged.ExitCode);
        Assert.All(Csv(Path.Combine(dir, "plain", "steps.csv")), r => Assert.Equal("", r["predicted_kl"]));
        var kl = Csv(Path.Combine(dir, "tb", "steps.csv")).Select(r => (float)double.Parse(r["predicted_kl"], Inv)).ToList();
        Assert.Equal(3, kl.Count);
        var events = EventFileReader.Read(Assert.Single(Directory.GetFiles(Path.Combine(dir, "events"))));
        Assert.Equal(kl, EventFileReader.Series(events, TensorBoardProgress.Tags.PredictedKl).Select(p => p.Value));
        Assert.All(kl, v => Assert.True(v > 0));
    }

    [Fact]
    public void Compare_TensorBoard_OneFolderPerRun_CachedRunsWriteTheirEpochCurve()
    {
        var dir = CliHarness.TempDir();
        var tb = Path.Combine(dir, "tb");
        string[] args = { "compare", "--data", "tiny", "--optimizers", "sgd,kfac", "--lr-grid", "0.1", "--seeds", "0", "--hidden", "4",
            "--batch-sizes", "16", "--epochs", "2", "--out", Path.Combine(dir, "cmp"), "--tensorboard", tb };
        var first = CliHarness.Run(args);
        Assert.True(first.ExitCode == 0, first.Stderr);
        Assert.Equal(new[] { "kfac-lr0.1-seed0-m16", "sgd-lr0.1-seed0-m16" },
            Directory.GetDirectories(tb).Select(Path.GetFileName).Order().ToArray());
        var kfac = EventFileReader.Read(Assert.Single(Directory.GetFiles(Path.Combine(tb, "kfac-lr0.1-seed0-m16"))));
        Assert.Equal(6, EventFileReader.Series(kfac, TensorBoardProgress.Tags.BatchLoss).Count);   // 48 rows / 16 × 2 epochs
        Assert.Equal(6, EventFileReader.Series(kfac, TensorBoardProgress.Tags.PredictedKl).Count);

        var second = CliHarness.Run(args);                                    // every run cached
        Assert.Equal(0, second.ExitCode);
        var files = Directory.GetFiles(Path.Combine(tb, "sgd-lr0.1-seed0-m16"));
        Assert.Equal(2, files.Length);
        var cached = EventFileReader.Read(files.Single(f => EventFileReader.Series(EventFileReader.Read(f), TensorBoardProgress.Tags.BatchLoss).Count == 0));
        Assert.Equal(new long[] { 0, 3, 6 }, EventFileReader.Series(cached, TensorBoardProgress.Tags.TrainLoss).Select(p => p.Step));
    }

    [Fact]
    public void Train_TensorBoardPathIsAFile_OneLineErrorBeforeTraining()
    {
        var dir = CliHarness.TempDir();
        var blocker = Path.Combine(dir, "file");
        File.WriteAllText(blocker, "x");
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--out", Path.Combine(dir, "run"), "--tensorboard", blocker });
        Assert.Equal(2, outcome.ExitCode);
        var line = Assert.Single(outcome.ErrorLines);
        Assert.StartsWith($"natgrad: error: --tensorboard: cannot write to '{blocker}'", line);
        Assert.False(Directory.Exists(Path.Combine(dir, "run")));
    }

    /// <summary>A run refused by its method's checks leaves no --tensorboard folder (it is created when the run starts).</summary>
    [Fact]
    public void Train_RefusedByTheMethod_CreatesNoTensorBoardFolder()
    {
        var dir = CliHarness.TempDir();
        var events = Path.Combine(dir, "events", "run1");
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", "exact", "--max-exact-params", "10",
            "--out", Path.Combine(dir, "run"), "--tensorboard", events });
        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith("natgrad: error: exact NGD needs a dense", Assert.Single(outcome.ErrorLines));
        Assert.False(Directory.Exists(Path.Combine(dir, "events")));
        Assert.Empty(Directory.GetFiles(dir, ".natgrad-probe-*"));
    }

    private static List<Dictionary<string, string>> Csv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();
        var header = lines[0].Split(',');
        return lines.Skip(1).Select(l => header.Zip(l.Split(',')).ToDictionary(p => p.First, p => p.Second)).ToList();
    }

    private sealed class Tolerance(double tol) : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) <= tol;
        public int GetHashCode(double x) => 0;
    }
}
