using System.Diagnostics;
using System.Globalization;
using NaturalGradient.Cli.Commands;
using NaturalGradient.Distributed;
using NaturalGradient.Tests.Packaging;

namespace NaturalGradient.Tests.Distributed;

/// <summary>
/// Data-parallel training over MPI end to end: <c>mpirun -np 2 --oversubscribe natgrad ...</c> on loopback, each
/// launch bounded by a timeout. Two ranks sharing every global batch take the steps one process takes on it.
/// </summary>
[Collection("Torch")]
public class DataParallelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private static ChildProcess Mpirun(int ranks, string workingDirectory, params string[] natgrad)
    {
        var exe = NatgradExecutable.Resolve();
        var args = new List<string> { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(CultureInfo.InvariantCulture), exe.FileName };
        args.AddRange(exe.With(natgrad));
        return ChildProcess.Run(Tests.Distributed.Mpirun.Path!, workingDirectory, Timeout, args.ToArray());
    }

    private static ChildProcess Natgrad(string workingDirectory, params string[] natgrad)
    {
        var exe = NatgradExecutable.Resolve();
        return ChildProcess.Run(exe.FileName, workingDirectory, Timeout, exe.With(natgrad).ToArray());
    }

    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "natgrad-mpi-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    [RequiresMpirunFact]
    public void MpiCheck_TwoRanks_EveryCollectiveIsCorrect()
    {
        var dir = TempDir();
        var run = Mpirun(2, dir, "mpi-check");
        Assert.True(run.ExitCode == 0, run.Tail());
        Assert.Contains("rank 0 of 2: allreduce, broadcast, allgather and barrier correct", run.Output);
        Assert.Contains("rank 1 of 2: allreduce, broadcast, allgather and barrier correct", run.Output);
    }

    /// <summary>wine: 142 training rows, global batch 32 (shards of 16; the last batch of 14 in shards of 7), 4 epochs = 20 steps.</summary>
    [RequiresMpirunTheory]
    [InlineData("sgd", "")]
    [InlineData("adam", "")]
    [InlineData("kfac", "")]
    [InlineData("tengrad", "")]
    [InlineData("ekfac", "")]
    [InlineData("diag", "")]
    [InlineData("block", "")]
    [InlineData("exact", "")]
    [InlineData("auto", "")]
    // Distributed K-FAC/EKFAC: both broadcast modes, eigen and Cholesky inverses refreshed every 3 steps (7 refreshes
    // shipped), the replicated mode, and factors allreduced every 4 steps (with the default KL clip, η²Δᵀg reads no
    // factor; the step form's ½uᵀMu reads the factors between syncs, so that case runs without the clip).
    [InlineData("kfac", "--inverse-period 3 --kfac-distribution inverse")]
    [InlineData("kfac", "--inverse-period 3 --kfac-distribution gradient")]
    [InlineData("kfac", "--inverse-period 3 --kfac-distribution gradient --kfac-inverse eigen")]
    [InlineData("kfac", "--inverse-period 3 --kfac-distribution replicated")]
    [InlineData("kfac", "--inverse-period 3 --factor-sync-every 4 --kl-clip none")]
    [InlineData("kfac", "--inverse-period 3 --factor-sync-every 4")]
    [InlineData("ekfac", "--inverse-period 3 --kfac-distribution inverse")]
    [InlineData("ekfac", "--inverse-period 3 --kfac-distribution gradient")]
    public void TwoRanks_MatchOneProcess_After20Steps(string method, string options)
    {
        var dir = TempDir();
        var extra = options.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var one = Natgrad(dir, Args(method, Path.Combine(dir, "one"), extra));
        Assert.True(one.ExitCode == 0, one.Tail());
        // Options that only shape the distributed run are the same in one process (it reads them and has nothing to distribute).
        var two = Mpirun(2, dir, Args(method, Path.Combine(dir, "two"), extra));
        Assert.True(two.ExitCode == 0, two.Tail());
        AssertSameRun(dir, "one", "two", 20);
        Assert.True(File.Exists(Path.Combine(dir, "two", "checkpoint.ngck")));
    }

    /// <summary>
    /// A 2-rank checkpoint of distributed K-FAC/EKFAC with the preconditioned gradient broadcast (rank 0 holds only its own
    /// layers' inverses until the checkpoint ships the others') and factors allreduced every 4 steps (syncs at steps 0, 4, 8,
    /// so the checkpoint after step index 9 holds pending sums) continues in one process exactly as the one-process run that never stopped.
    /// </summary>
    [RequiresMpirunTheory]
    [InlineData("kfac", "--kfac-inverse cholesky")]
    [InlineData("kfac", "--kfac-inverse eigen")]
    [InlineData("ekfac", "")]
    public void TwoRankCheckpoint_GradientBroadcast_ResumesInOneProcess_AsTheUninterruptedRun(string method, string options)
    {
        var dir = TempDir();
        var extra = options.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Concat(new[] { "--inverse-period", "4", "--kl-clip", "none", "--kfac-distribution", "gradient", "--factor-sync-every", "4" }).ToArray();
        var one = Natgrad(dir, Args(method, Path.Combine(dir, "one"), extra));
        Assert.True(one.ExitCode == 0, one.Tail());
        var half = Mpirun(2, dir, Args(method, Path.Combine(dir, "half"), extra, epochs: 2));
        Assert.True(half.ExitCode == 0, half.Tail());
        var resumed = Natgrad(dir, "train", "--resume", Path.Combine(dir, "half"), "--epochs", "4");
        Assert.True(resumed.ExitCode == 0, resumed.Tail());
        AssertSameRun(dir, "one", "half", 20);
    }

    /// <summary>The training command for wine (float64, the empirical Fisher for the natural-gradient methods).</summary>
    private static string[] Args(string method, string outDir, string[] extra, int epochs = 4)
    {
        // The Monte-Carlo Fisher (the natural-gradient methods' default) samples targets per shard, so the comparison
        // with one process uses the deterministic empirical Fisher (docs/DISTRIBUTED.md).
        bool natural = method is not ("sgd" or "adam");
        return new[]
        {
            "train", "--data", "wine", "--optimizer", method, "--hidden", "16", "--epochs", epochs.ToString(CultureInfo.InvariantCulture),
            "--batch-size", "32", "--threads", "1", "--seed", "3", "--dtype", "float64", "--out", outDir,
        }.Concat(natural ? new[] { "--fisher", "empirical" } : Array.Empty<string>()).Concat(extra).ToArray();
    }

    /// <summary>Every step's loss and the final train and test losses of two runs agree to 1e-5 relative.</summary>
    private static void AssertSameRun(string dir, string a, string b, int steps)
    {
        double[] Column(string run, string file, int column) => File.ReadAllLines(Path.Combine(dir, run, file)).Skip(1)
            .Select(l => double.Parse(l.Split(',')[column], CultureInfo.InvariantCulture)).ToArray();
        var lossA = Column(a, "steps.csv", 2);
        var lossB = Column(b, "steps.csv", 2);
        Assert.Equal(steps, lossA.Length);
        Assert.Equal(steps, lossB.Length);
        for (int i = 0; i < steps; i++)
            Assert.True(Math.Abs(lossB[i] - lossA[i]) <= 1e-5 * Math.Abs(lossA[i]), $"step {i + 1}: loss {lossB[i]:R} in {b}, {lossA[i]:R} in {a}");
        // The full-set losses after the last step depend on every weight of the final model.
        var trainA = Column(a, "epochs.csv", 1);
        var trainB = Column(b, "epochs.csv", 1);
        var testA = Column(a, "epochs.csv", 2);
        var testB = Column(b, "epochs.csv", 2);
        Assert.True(Math.Abs(trainB[^1] - trainA[^1]) <= 1e-5 * trainA[^1], $"final train loss {trainB[^1]:R} vs {trainA[^1]:R}");
        Assert.True(Math.Abs(testB[^1] - testA[^1]) <= 1e-5 * testA[^1], $"final test loss {testB[^1]:R} vs {testA[^1]:R}");
    }

    [RequiresMpirunFact]
    public void TwoRanks_MethodThatDoesNotRunDataParallel_IsRefusedBeforeTraining()
    {
        var dir = TempDir();
        var run = Mpirun(2, dir, "train", "--data", "wine", "--optimizer", "hf", "--epochs", "1", "--out", Path.Combine(dir, "hf"));
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("natgrad: error: mpirun -np 2: 'hf' does not run data-parallel; methods that do: sgd, adam, exact, block, tengrad, diag, kfac, ekfac, auto", run.Output);
        Assert.False(File.Exists(Path.Combine(dir, "hf", "steps.csv")));
    }

    [Fact]
    public void MissingMpiLibrary_SaysHowToInstallIt()
    {
        var e = Assert.Throws<MpiNotAvailableException>(() => OpenMpiNative.Load("libmpi-absent.so.40"));
        Assert.StartsWith("MPI is not installed: libmpi-absent.so.40 (OpenMPI 4) could not be loaded", e.Message);
        Assert.Contains("sudo apt-get install openmpi-bin libopenmpi-dev", e.Message);
    }

    [Fact]
    public void SingleProcess_NeverLoadsMpi()
    {
        Assert.Null(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE"));
        var c = Launch.FromEnvironment();
        Assert.Same(SingleProcess.Instance, c);
        using var t = TorchSharp.torch.ones(3);
        c.AllReduce(t, ReduceOperation.Average);
        Assert.Equal(new float[] { 1, 1, 1 }, t.data<float>().ToArray());
        Assert.DoesNotContain("libmpi", File.ReadAllText("/proc/self/maps"));
    }

    [Fact]
    public void ShardRanges_CoverTheBatchInRankOrder()
    {
        foreach (var (rows, size) in new[] { (32L, 2), (14L, 2), (7L, 3), (128L, 5) })
        {
            long next = 0;
            for (int r = 0; r < size; r++)
            {
                var (start, count) = NaturalGradient.Training.DataParallel.ShardRange(rows, r, size);
                Assert.Equal(next, start);
                Assert.InRange(count, rows / size, rows / size + 1);
                next = start + count;
            }
            Assert.Equal(rows, next);
        }
    }
}

/// <summary>A rank killed mid-run: the other rank exits with a clear error within the stated timeout, and the last checkpoint resumes.</summary>
[Collection("Torch")]
public class RankFailureTests
{
    [RequiresMpirunFact]
    public void KilledRank_OtherRankExitsWithAClearError_AndTheLastCheckpointResumes()
    {
        var dir = Path.Combine(Path.GetTempPath(), "natgrad-mpi-kill-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        var outDir = Path.Combine(dir, "run");
        var exe = NatgradExecutable.Resolve();
        var info = new ProcessStartInfo(Mpirun.Path!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir };
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", "2", exe.FileName }) info.ArgumentList.Add(a);
        foreach (var a in exe.With(new[] { "train", "--data", "wine", "--optimizer", "kfac", "--hidden", "16", "--epochs", "400", "--batch-size", "32",
                     "--threads", "1", "--seed", "3", "--checkpoint-every", "10", "--out", outDir })) info.ArgumentList.Add(a);
        info.Environment[Launch.TimeoutVariable] = "20";
        using var mpirun = Process.Start(info)!;
        var stderr = mpirun.StandardError.ReadToEndAsync();
        _ = mpirun.StandardOutput.ReadToEndAsync();
        try
        {
            // Wait for a checkpoint, then kill rank 1 (SIGKILL: no chance to say goodbye).
            var checkpoint = Path.Combine(outDir, "checkpoint.ngck");
            var wait = Stopwatch.StartNew();
            while (!File.Exists(checkpoint) && wait.Elapsed < TimeSpan.FromMinutes(2) && !mpirun.HasExited) Thread.Sleep(200);
            Assert.True(File.Exists(checkpoint), "no checkpoint was written: " + (mpirun.HasExited ? stderr.Result : "still running"));
            var rank1 = Ranks(mpirun.Id).Single(p => p.Rank == 1).Pid;
            Process.GetProcessById(rank1).Kill();
            var killed = Stopwatch.StartNew();
            Assert.True(mpirun.WaitForExit(TimeSpan.FromSeconds(60)), "the job did not end within 60 s of a rank's death");
            Assert.NotEqual(0, mpirun.ExitCode);
            var text = stderr.Result;
            Assert.Matches(@"error: rank 0: (stopped by mpirun \(SIGTERM\)|MPI_\w+ did not complete within 20 s)", text);
        }
        finally
        {
            if (!mpirun.HasExited) mpirun.Kill(entireProcessTree: true);
        }
        // The last checkpoint (written by rank 0, temp file then rename) continues in one process.
        var resume = ChildProcess.Run(exe.FileName, dir, TimeSpan.FromMinutes(3), exe.With(new[] { "train", "--resume", outDir }).ToArray());
        Assert.True(resume.ExitCode == 0, resume.Tail());
    }

    /// <summary>The natgrad processes mpirun started, with their ranks (from OMPI_COMM_WORLD_RANK).</summary>
    private static List<(int Pid, int Rank)> Ranks(int mpirunPid)
    {
        var result = new List<(int, int)>();
        foreach (var d in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(d), out var pid)) continue;
            try
            {
                var status = File.ReadAllLines(Path.Combine(d, "status"));
                var ppid = status.FirstOrDefault(l => l.StartsWith("PPid:"))?.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1].Trim();
                if (ppid != mpirunPid.ToString(CultureInfo.InvariantCulture)) continue;
                var rank = File.ReadAllText(Path.Combine(d, "environ")).Split('\0').FirstOrDefault(v => v.StartsWith("OMPI_COMM_WORLD_RANK="));
                if (rank is not null) result.Add((pid, int.Parse(rank["OMPI_COMM_WORLD_RANK=".Length..], CultureInfo.InvariantCulture)));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return result;
    }
}
