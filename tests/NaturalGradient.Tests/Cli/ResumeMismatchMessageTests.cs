using NaturalGradient.Training;
using NaturalGradient.Training.Models;

namespace NaturalGradient.Tests.Cli;

/// <summary>
/// Resuming a checkpoint of another method, or of the same method with other settings, is refused with one short line
/// that names the difference (not two full settings dumps); the line is what <c>natgrad train --resume</c> prints.
/// </summary>
[Collection("Torch")]
public class ResumeMismatchMessageTests
{
    private static TrainingCheckpoint CheckpointOf(OptimizerSettings settings, string folder)
    {
        var path = Path.Combine(folder, "checkpoint.ngck");
        using var data = TinyData.Classification(train: 40, test: 10);
        new Trainer(new ModelSpec { Hidden = new[] { 5 } }, settings, new TrainerOptions { Epochs = 1, BatchSize = 16, Seed = 2, Threads = 1 })
            .Run(data, checkpoints: new CheckpointPlan { Write = (c, _) => c.Save(path) });
        return TrainingCheckpoint.Load(path);
    }

    private static string Refusal(TrainingCheckpoint checkpoint, OptimizerSettings settings)
    {
        using var data = TinyData.Classification(train: 40, test: 10);
        var e = Assert.Throws<ResumeSettingsMismatchException>(() =>
            new Trainer(new ModelSpec { Hidden = new[] { 5 } }, settings, new TrainerOptions { Epochs = 2, BatchSize = 16, Seed = 2, Threads = 1 })
                .Run(data, resume: checkpoint));
        Assert.DoesNotContain('\n', e.Message);
        return e.Message;
    }

    [Fact]
    public void Another_method_is_named_in_one_short_line()
    {
        using var folder = new NaturalGradient.Tests.Data.TempFolder();
        using var checkpoint = CheckpointOf(new OptimizerSettings { Name = "ekfac", Damping = 0.01 }, folder.Path);
        Assert.Equal("the checkpoint is for the method ekfac, but this run is kfac",
            Refusal(checkpoint, new OptimizerSettings { Name = "kfac", Damping = 0.01 }));
    }

    [Fact]
    public void The_same_method_with_other_settings_names_the_settings_that_differ()
    {
        using var folder = new NaturalGradient.Tests.Data.TempFolder();
        var saved = new OptimizerSettings { Name = "kfac", Damping = 0.01, LearningRate = 0.1, InverseUpdatePeriod = 10 };
        using var checkpoint = CheckpointOf(saved, folder.Path);
        Assert.Equal("the checkpoint is for the method kfac with Damping 0.01, but this run has Damping 0.1",
            Refusal(checkpoint, saved with { Damping = 0.1 }));
        Assert.Equal("the checkpoint is for the method kfac with Damping 0.01 and LearningRate 0.1, but this run has Damping 0.1 and LearningRate 0.3",
            Refusal(checkpoint, saved with { Damping = 0.1, LearningRate = 0.3 }));
        Assert.Equal("the checkpoint is for the method kfac with Damping 0.01 and FactorDecay 0.95 and InverseUpdatePeriod 10, but this run has Damping 0.1 and FactorDecay 0.9 and InverseUpdatePeriod 5 (and 1 more settings)",
            Refusal(checkpoint, saved with { Damping = 0.1, LearningRate = 0.3, FactorDecay = 0.9, InverseUpdatePeriod = 5 }));
    }
}
