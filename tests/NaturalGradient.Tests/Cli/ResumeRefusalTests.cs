using NaturalGradient.Cli.Commands;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Training;
using NaturalGradient.Training.Models;

namespace NaturalGradient.Tests.Cli;

/// <summary>
/// <c>natgrad train --resume</c> refuses a checkpoint of the same method with other settings in one line that names the
/// natgrad options (<c>--damping 0.01</c>), with values as they are typed, not the library's properties
/// (<c>Damping 0.01</c>); a setting no option sets keeps its property name; another method keeps the library's line.
/// </summary>
[Collection("Torch")]
public class ResumeRefusalTests
{
    private const string RunFile = "runs/x/run.json";
    private const string Advice = "; to continue from the checkpoint, set its values in runs/x/run.json, or start a new run without --resume";

    private static readonly TrainOptions Options = new(OptimizerCatalog.Default.Names);

    private static readonly OptimizerSettings Kfac = OptimizerSettings.For("kfac") with { Damping = 0.01, LearningRate = 0.1 };

    /// <summary>The refusal the trainer gives for a checkpoint of <paramref name="checkpoint"/> resumed with <paramref name="run"/> (the code path of <see cref="Trainer.Run"/>).</summary>
    private static ResumeSettingsMismatchException Refusal(OptimizerSettings checkpoint, OptimizerSettings run) =>
        Assert.IsType<ResumeSettingsMismatchException>(SettingsDifference.Refusal(checkpoint.ToString(), run.ToString()));

    private static string Line(OptimizerSettings checkpoint, OptimizerSettings run)
    {
        var line = ResumeRefusal.Describe(Refusal(checkpoint, run), Options, RunFile);
        Assert.DoesNotContain('\n', line);
        return line;
    }

    [Fact]
    public void A_differing_damping_is_named_as_the_option_through_the_trainer()
    {
        using var folder = new NaturalGradient.Tests.Data.TempFolder();
        var path = Path.Combine(folder.Path, "checkpoint.ngck");
        using var data = TinyData.Classification(train: 40, test: 10);
        Trainer Make(OptimizerSettings s, int epochs) =>
            new(new ModelSpec { Hidden = new[] { 5 } }, s, new TrainerOptions { Epochs = epochs, BatchSize = 16, Seed = 2, Threads = 1 });
        Make(Kfac, 1).Run(data, checkpoints: new CheckpointPlan { Write = (c, _) => c.Save(path) });
        using var checkpoint = TrainingCheckpoint.Load(path);

        var e = Assert.Throws<ResumeSettingsMismatchException>(() => Make(Kfac with { Damping = 0.1 }, 2).Run(data, resume: checkpoint));

        Assert.Equal(new[] { "Damping" }, e.Differences);
        Assert.Equal("the checkpoint is for the method kfac with Damping 0.01, but this run has Damping 0.1", e.Message);
        Assert.Equal("the checkpoint is for the method kfac with --damping 0.01, but this run has --damping 0.1" + Advice,
            ResumeRefusal.Describe(e, Options, RunFile));
    }

    [Fact]
    public void A_run_value_the_stored_command_line_does_not_give_is_marked_as_the_default()
    {
        Assert.Equal("the checkpoint is for the method kfac with --damping 0.01 and --lr 0.1, but this run has --damping 0.1 (the default) and --lr 0.3" + Advice,
            ResumeRefusal.Describe(Refusal(Kfac, Kfac with { Damping = 0.1, LearningRate = 0.3 }), Options, RunFile, typed: name => name == "--lr"));
        Assert.Equal("the checkpoint is for the method kfac with --damping 0.01 and --inverse-period 10, but this run has --damping 0.1 (the default) and no --inverse-period" + Advice,
            ResumeRefusal.Describe(Refusal(Kfac with { InverseUpdatePeriod = 10 }, Kfac with { Damping = 0.1, InverseUpdatePeriod = null }), Options, RunFile, typed: _ => false));
    }

    [Fact]
    public void Two_differing_options_are_both_named_in_option_order()
    {
        Assert.Equal("the checkpoint is for the method kfac with --damping 0.01 and --lr 0.1, but this run has --damping 0.1 and --lr 0.3" + Advice,
            Line(Kfac, Kfac with { Damping = 0.1, LearningRate = 0.3 }));
    }

    [Fact]
    public void Values_read_as_typed_choices_none_and_exponents()
    {
        Assert.Equal("the checkpoint is for the method kfac with --eps 1e-8 and --kfac-inverse cholesky and --kl-clip 0.01, " +
                     "but this run has --eps 1e-7 and --kfac-inverse eigen and --kl-clip none" + Advice,
            Line(Kfac, Kfac with { Eps = 1e-7, KfacInverse = KfacInverseMethod.Eigen, KlClip = null }));
        Assert.Equal("the checkpoint is for the method kfac with --fisher mc and --lr-decay exp:0.9 and --metric other, " +
                     "but this run has --fisher empirical and --lr-decay step:10:1e-5 and --metric same" + Advice,
            Line(Kfac with { Fisher = FisherKind.MonteCarlo, LrDecay = LrSchedule.Exponential(0.9), MetricSource = MetricSource.OtherBatch },
                 Kfac with { Fisher = FisherKind.Empirical, LrDecay = LrSchedule.Step(10, 1e-5), MetricSource = MetricSource.SameBatch }));
    }

    [Fact]
    public void An_unset_optional_value_reads_as_no_option()
    {
        Assert.Equal("the checkpoint is for the method kfac with --inverse-period 5 and --unlabeled-count 32, " +
                     "but this run has no --inverse-period and no --unlabeled-count" + Advice,
            Line(Kfac with { InverseUpdatePeriod = 5, UnlabeledCount = 32 }, Kfac with { InverseUpdatePeriod = null, UnlabeledCount = null }));
    }

    [Fact]
    public void Settings_set_by_one_option_together_are_named_once_as_that_option()
    {
        var hf = OptimizerSettings.For("hf");
        Assert.Equal("the checkpoint is for the method hf with --hf-preconditioner kfac, but this run has --hf-preconditioner diagonal" + Advice,
            Line(hf with { HfKfacPreconditioner = true }, hf with { HfDiagonalPreconditioner = true }));
        Assert.Equal("the checkpoint is for the method kfac with --tensorboard, but this run has no --tensorboard" + Advice,
            Line(Kfac with { ReportPredictedKl = true }, Kfac));
    }

    [Fact]
    public void A_setting_without_an_option_keeps_its_library_name_after_the_options()
    {
        // A setting of a settings description that no natgrad option sets (here one the options do not know).
        var checkpoint = SettingsDifference.Parse(Kfac.ToString())!;
        var run = SettingsDifference.Parse((Kfac with { Damping = 0.1 }).ToString())!;
        checkpoint["WarmupSteps"] = "5";
        run["WarmupSteps"] = "0";
        var e = new ResumeSettingsMismatchException(checkpoint, run);

        Assert.Equal("the checkpoint is for the method kfac with Damping 0.01 and WarmupSteps 5, but this run has Damping 0.1 and WarmupSteps 0", e.Message);
        Assert.Equal("the checkpoint is for the method kfac with --damping 0.01 and WarmupSteps 5, but this run has --damping 0.1 and WarmupSteps 0" + Advice,
            ResumeRefusal.Describe(e, Options, RunFile));
    }

    [Fact]
    public void More_than_three_differing_options_are_counted()
    {
        Assert.Equal("the checkpoint is for the method kfac with --damping 0.01 and --factor-decay 0.95 and --inverse-period 10, " +
                     "but this run has --damping 0.1 and --factor-decay 0.9 and --inverse-period 5 (and 1 more settings)" + Advice,
            Line(Kfac with { InverseUpdatePeriod = 10 }, Kfac with { Damping = 0.1, LearningRate = 0.3, FactorDecay = 0.9, InverseUpdatePeriod = 5 }));
    }

    [Fact]
    public void Another_method_keeps_the_librarys_line()
    {
        Assert.Equal("the checkpoint is for the method ekfac, but this run is kfac",
            Line(OptimizerSettings.For("ekfac") with { Damping = 0.01 }, Kfac));
    }

    [Fact]
    public void Every_enum_setting_has_an_option_spelling_for_every_value()
    {
        var choices = ResumeRefusal.Choices(Options);
        foreach (var property in typeof(OptimizerSettings).GetProperties().Where(p => p.PropertyType.IsEnum))
        {
            Assert.True(choices.ContainsKey(property.Name), $"{property.Name} has no option spelling");
            foreach (var value in Enum.GetValues(property.PropertyType))
            {
                var spelling = ResumeRefusal.Spelling(property.Name, value.ToString()!, Options);
                Assert.True(spelling is not null, $"{property.Name} {value} has no spelling in {choices[property.Name].Option.Name}'s help");
                Assert.Equal(value, choices[property.Name].Parse(spelling!));
            }
        }
    }

    [Theory]
    [InlineData("1E-08", "1e-8")]
    [InlineData("1E+20", "1e20")]
    [InlineData("2.5E-05", "2.5e-5")]
    [InlineData("0.01", "0.01")]
    [InlineData("exp:1E-05", "exp:1e-5")]
    [InlineData("step:10:0.5", "step:10:0.5")]
    [InlineData("Eigen", "Eigen")]
    public void Stored_numbers_read_as_typed(string stored, string typed) => Assert.Equal(typed, ResumeRefusal.Typed(stored));
}
