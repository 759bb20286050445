using NaturalGradient.Training;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Lifecycle;

/// <summary>
/// The trainer's checkpoints: a run cancelled after step k, written to a checkpoint file and resumed from it takes the
/// same steps as the run that never stopped: bitwise equal weights and identical per-step losses, for every method.
/// </summary>
[Collection("Torch")]
public class TrainerResumeTests
{
    private const int Epochs = 3, Batch = 16;

    private static Trainer Trainer(string method) => new(new ModelSpec { Hidden = new[] { 6 } },
        new OptimizerSettings
        {
            Name = method == "hf-kfac" ? "hf" : method == "kbfgs-lbfgs" ? "kbfgs" : method,
            HfKfacPreconditioner = method == "hf-kfac",
            KbfgsMemory = method == "kbfgs-lbfgs" ? 3 : 0,
            LearningRate = method is "sgd" ? 0.05 : method is "adam" ? 0.01 : 0.2,
            Momentum = method is "adam" ? 0 : 0.9,
            Damping = 1e-2,
            Fisher = method is "tengrad" or "ekfac" or "kbfgs" or "kbfgs-lbfgs" ? NaturalGradient.Fisher.FisherKind.Empirical : NaturalGradient.Fisher.FisherKind.MonteCarlo,
            DampingSchedule = method is "hf" ? NaturalGradient.Damping.DampingSchedule.LevenbergMarquardt : NaturalGradient.Damping.DampingSchedule.Constant,
            MetricSource = method is "kfac" ? MetricSource.OtherBatch : MetricSource.SameBatch,
            InverseUpdatePeriod = 2,
        },
        new TrainerOptions { Epochs = Epochs, BatchSize = Batch, Seed = 5, Threads = 1 });

    /// <summary>A plan that keeps the last checkpoint (saved to and read back from a file) and the final weights.</summary>
    private sealed class Keeper(string folder)
    {
        public string Path { get; } = System.IO.Path.Combine(folder, "checkpoint.ngck");
        public Dictionary<string, Tensor> Weights { get; } = new();
        public List<CheckpointReason> Reasons { get; } = new();

        public CheckpointPlan Plan(long? every = null) => new()
        {
            EverySteps = every,
            Write = (checkpoint, model) =>
            {
                checkpoint.Save(Path);
                Reasons.Add(checkpoint.Header.Reason);
                foreach (var t in Weights.Values) t.Dispose();
                Weights.Clear();
                foreach (var (name, p) in model.named_parameters()) Weights[name] = p.detach().clone().DetachFromDisposeScope();
            },
        };
    }

    private sealed class CancelAt(long step, CancellationTokenSource cts) : ITrainingProgress
    {
        public void OnStep(StepMetrics s) { if (s.Step == step) cts.Cancel(); }
    }

    [Theory]
    [InlineData("sgd", 5)]
    [InlineData("adam", 4)]
    [InlineData("tengrad", 6)]
    [InlineData("kfac", 5)]
    [InlineData("ekfac", 3)]
    [InlineData("hf", 4)]
    [InlineData("hf-kfac", 6)]
    [InlineData("ksd", 5)]
    [InlineData("kbfgs", 5)]
    [InlineData("kbfgs-lbfgs", 6)]
    [InlineData("auto", 5)]
    public void Interrupted_at_step_k_and_resumed_equals_the_uninterrupted_run(string method, long k)
    {
        using var data = TinyData.Classification(train: 60, test: 20);
        using var folder = new NaturalGradient.Tests.Data.TempFolder();

        var straight = new Keeper(Directory.CreateDirectory(System.IO.Path.Combine(folder.Path, "a")).FullName);
        var full = Trainer(method).Run(data, checkpoints: straight.Plan());

        var broken = new Keeper(Directory.CreateDirectory(System.IO.Path.Combine(folder.Path, "b")).FullName);
        using var cts = new CancellationTokenSource();
        var e = Assert.Throws<TrainingInterruptedException>(() =>
            Trainer(method).Run(data, new CancelAt(k, cts), cts.Token, broken.Plan()));
        Assert.Equal(k, e.Step);
        Assert.True(e.CheckpointWritten);
        Assert.Equal(CheckpointReason.Interrupted, broken.Reasons[^1]);

        TrainingResult resumed;
        using (var checkpoint = TrainingCheckpoint.Load(broken.Path))
        {
            Assert.Equal(k, checkpoint.Header.Step);
            resumed = Trainer(method).Run(data, checkpoints: broken.Plan(), resume: checkpoint);
        }

        Assert.Equal(full.Steps.Select(s => s.Loss), resumed.Steps.Select(s => s.Loss));
        Assert.Equal(full.Epochs.Select(x => x.TrainLoss), resumed.Epochs.Select(x => x.TrainLoss));
        foreach (var (name, w) in straight.Weights)
            Assert.True(w.eq(broken.Weights[name]).all().item<bool>(), $"{method}: {name} differs after resume at step {k}");
    }

    [Fact]
    public void Periodic_checkpoints_mid_epoch_resume_exactly()
    {
        using var data = TinyData.Regression(train: 70, test: 10);
        using var folder = new NaturalGradient.Tests.Data.TempFolder();
        var straight = new Keeper(folder.Path);
        var full = Trainer("ekfac").Run(data, checkpoints: straight.Plan());

        // Stop after step 7 (mid-epoch 2), with checkpoints every 3 steps: the last one is step 6.
        var periodic = new Keeper(Directory.CreateDirectory(System.IO.Path.Combine(folder.Path, "p")).FullName);
        using var cts = new CancellationTokenSource();
        Assert.Throws<TrainingInterruptedException>(() => Trainer("ekfac").Run(data, new CancelAt(7, cts), cts.Token,
            new CheckpointPlan { EverySteps = 3, Write = (c, m) => { if (c.Header.Reason == CheckpointReason.Periodic) periodic.Plan().Write(c, m); } }));
        using var checkpoint = TrainingCheckpoint.Load(periodic.Path);
        Assert.Equal(6, checkpoint.Header.Step);
        Assert.Equal(2, checkpoint.Header.Epoch);
        Assert.Equal(1, checkpoint.Header.BatchesDone);
        var resumed = Trainer("ekfac").Run(data, checkpoints: periodic.Plan(), resume: checkpoint);
        Assert.Equal(full.Steps.Select(s => s.Loss), resumed.Steps.Select(s => s.Loss));
        foreach (var (name, w) in straight.Weights)
            Assert.True(w.eq(periodic.Weights[name]).all().item<bool>(), $"{name} differs");
    }

    [Fact]
    public void A_checkpoint_of_another_method_or_model_is_refused()
    {
        using var data = TinyData.Classification(train: 60, test: 20);
        using var folder = new NaturalGradient.Tests.Data.TempFolder();
        var keeper = new Keeper(folder.Path);
        new Trainer(new ModelSpec { Hidden = new[] { 6 } }, new OptimizerSettings { Name = "kfac" },
            new TrainerOptions { Epochs = 1, BatchSize = Batch, Seed = 5 }).Run(data, checkpoints: keeper.Plan());
        var before = File.ReadAllBytes(keeper.Path);
        using var checkpoint = TrainingCheckpoint.Load(keeper.Path);

        var method = Assert.Throws<ResumeSettingsMismatchException>(() => new Trainer(new ModelSpec { Hidden = new[] { 6 } }, new OptimizerSettings { Name = "ekfac" },
            new TrainerOptions { Epochs = 2, BatchSize = Batch, Seed = 5 }).Run(data, resume: checkpoint));
        Assert.StartsWith("the checkpoint is for the method ", method.Message);
        var e = Assert.Throws<InvalidDataException>(() => new Trainer(new ModelSpec { Hidden = new[] { 7 } }, new OptimizerSettings { Name = "kfac" },
            new TrainerOptions { Epochs = 2, BatchSize = Batch, Seed = 5 }).Run(data, resume: checkpoint));
        Assert.StartsWith("the checkpoint is for the model ", e.Message);
        e = Assert.Throws<InvalidDataException>(() => new Trainer(new ModelSpec { Hidden = new[] { 6 } }, new OptimizerSettings { Name = "kfac" },
            new TrainerOptions { Epochs = 1, BatchSize = Batch, Seed = 5 }).Run(data, resume: checkpoint));
        Assert.Equal("the checkpoint's run already completed 1 epochs; ask for more than 1 epochs to continue it", e.Message);
        Assert.Equal(before, File.ReadAllBytes(keeper.Path));
    }

    [Fact]
    public void Truncated_or_altered_checkpoint_files_are_refused_with_one_line()
    {
        using var data = TinyData.Classification(train: 60, test: 20);
        using var folder = new NaturalGradient.Tests.Data.TempFolder();
        var keeper = new Keeper(folder.Path);
        new Trainer(new ModelSpec { Hidden = new[] { 6 } }, new OptimizerSettings { Name = "kfac" },
            new TrainerOptions { Epochs = 1, BatchSize = Batch, Seed = 5 }).Run(data, checkpoints: keeper.Plan());
        var bytes = File.ReadAllBytes(keeper.Path);
        var path = System.IO.Path.Combine(folder.Path, "bad.ngck");

        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path));
        Assert.Equal($"checkpoint {path} is truncated or has trailing bytes ({bytes.Length / 2 - 50} payload bytes, expected {bytes.Length - 50})", e.Message);

        var flipped = bytes.ToArray();
        flipped[^100] ^= 0x40;
        File.WriteAllBytes(path, flipped);
        e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path));
        Assert.Equal($"checkpoint {path} is corrupted (its SHA-256 does not match its contents)", e.Message);

        File.WriteAllText(path, "step,loss\n1,0.5\n");
        e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path));
        Assert.Equal($"{path} is not a natgrad checkpoint", e.Message);

        var future = bytes.ToArray();
        future[6] = 9;
        File.WriteAllBytes(path, future);
        e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Load(path));
        Assert.Equal($"checkpoint {path} has format version 9; this natgrad reads version 1", e.Message);
    }
}
