using System.Text.Json;
using NaturalGradient.Curvature;
using NaturalGradient.Tests.Cli;
using NaturalGradient.Training;
using NaturalGradient.Training.Models;

namespace NaturalGradient.Tests.Observability;

[Collection("Torch")]
public class DefaultsTests
{
    public static TheoryData<string> Methods() => new(MethodDefaults.Methods);

    [Theory]
    [MemberData(nameof(Methods))]
    public void EveryCatalogMethod_HasValidDefaults_AndReadsEverySettingItChanges(string name)
    {
        var d = MethodDefaults.For(name);
        d.Validate();
        Assert.Equal(name, d.Name);
        // A default may matter only under another option (hf's preconditioner settings): read in some configuration.
        var reads = MethodDefaults.Reads(d)!.Union(MethodDefaults.Reads(d with { HfKfacPreconditioner = true })!).ToHashSet();
        var neutral = new OptimizerSettings();
        foreach (var p in typeof(OptimizerSettings).GetProperties().Where(p => p.Name != nameof(OptimizerSettings.Name)))
            if (!Equals(p.GetValue(d), p.GetValue(neutral)))
                Assert.True(reads.Contains(p.Name), $"{name} sets {p.Name} but does not read it");
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void EveryMethod_WithItsDefaults_LearnsTheTinyClassification(string name)
    {
        using var data = TinyData.Classification(train: 120, test: 60);
        var result = new Trainer(new ModelSpec { Hidden = new[] { 8 } }, MethodDefaults.For(name),
            new TrainerOptions { Epochs = 10, BatchSize = 20 }).Run(data);
        // Three overlapping blobs, 60 steps: far above chance (1/3) and a clearly lower loss, no divergence.
        Assert.True(result.Final.TestAccuracy >= 0.65, $"{name}: test accuracy {result.Final.TestAccuracy}");
        Assert.True(result.Final.TrainLoss < 0.8 * result.Epochs[0].TrainLoss, $"{name}: loss {result.Epochs[0].TrainLoss} → {result.Final.TrainLoss}");
    }

    [Theory]
    [InlineData("sgd", new[] { "--damping", "0.1", "--fisher", "mc" },
        "natgrad: error: --damping, --fisher do not apply to sgd (it reads --lr, --momentum, --weight-decay, --lr-decay)")]
    [InlineData("adam", new[] { "--momentum", "0.5" },
        "natgrad: error: --momentum does not apply to adam (it reads --lr, --weight-decay, --lr-decay, --beta1, --beta2, --eps)")]
    [InlineData("tengrad", new[] { "--inverse-period", "5" },
        "natgrad: error: --inverse-period does not apply to tengrad (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --mc-samples, --metric, --metric-form, --kl-clip, --diagnostics-every)")]
    [InlineData("ekfac", new[] { "--kfac-inverse", "cholesky" },
        "natgrad: error: --kfac-inverse does not apply to ekfac (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --mc-samples, --metric, --inverse-period, --factor-period, --factor-decay, --kl-clip, --kl-clip-form, --kfac-damping, --factor-precision, --inverse-precision, --kfac-distribution, --factor-sync-every, --diagnostics-every)")]
    [InlineData("tengrad", new[] { "--kl-clip-form", "gradient" },
        "natgrad: error: --kl-clip-form has no effect without a KL clip (tengrad runs with --kl-clip none here); give --kl-clip X")]
    [InlineData("tengrad", new[] { "--kl-clip-form", "gradient", "--kbfgs-memory", "3" },
        "natgrad: error: --kbfgs-memory does not apply to tengrad (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --mc-samples, --metric, --metric-form, --kl-clip, --diagnostics-every); --kl-clip-form has no effect without a KL clip (tengrad runs with --kl-clip none here); give --kl-clip X")]
    [InlineData("ksd", new[] { "--lr", "0.1", "--momentum", "0.5" },
        "natgrad: error: --lr, --momentum do not apply to ksd (it reads --damping, --ksd-dimension)")]
    [InlineData("kbfgs", new[] { "--inverse-period", "5" },
        "natgrad: error: --inverse-period does not apply to kbfgs (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --metric, --kl-clip, --kbfgs-memory, --diagnostics-every)")]
    [InlineData("auto", new[] { "--hf-iters", "5" },
        "natgrad: error: --hf-iters does not apply to auto (it reads --lr, --momentum, --weight-decay, --lr-decay, --damping, --damping-schedule, --fisher, --metric, --metric-form, --inverse-period, --factor-period, --factor-decay, --kl-clip, --kfac-inverse, --kfac-damping, --factor-precision, --inverse-precision, --diagnostics-every)")]
    public void Train_OptionTheMethodDoesNotRead_IsAnError(string method, string[] extra, string expected)
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", method, "--out", dir }.Concat(extra).ToArray());
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal(expected, Assert.Single(outcome.ErrorLines));
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void Train_OnlyDataAndOptimizer_UsesTheMethodDefaults(string method)
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", method, "--epochs", "1", "--out", dir });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json")));
        Assert.Equal(MethodDefaults.For(method).ToString(), config.RootElement.GetProperty("optimizer_description").GetString());
    }

    [Fact]
    public void Train_GivenOptionsOverrideTheDefaults_KlClipNoneRemovesTheClip()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", "kfac", "--epochs", "1", "--lr", "0.02", "--kl-clip", "none", "--out", dir });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "config.json")));
        var expected = MethodDefaults.For("kfac") with { LearningRate = 0.02, KlClip = null };
        Assert.Equal(expected.ToString(), config.RootElement.GetProperty("optimizer_description").GetString());
    }

    [Fact]
    public void Compare_OptionSomeMethodsDoNotRead_IsANote_NoMethodReadsIt_IsAnError()
    {
        var dir = CliHarness.TempDir();
        string[] common = { "compare", "--data", "tiny", "--lr-grid", "0.05", "--seeds", "0", "--epochs", "1", "--hidden", "4", "--damping", "0.05" };
        var mixed = CliHarness.Run(common.Concat(new[] { "--optimizers", "sgd,adam,tengrad", "--out", Path.Combine(dir, "a") }).ToArray());
        Assert.Equal(0, mixed.ExitCode);
        Assert.Contains("note: --damping does not apply to sgd, adam (used by the others)\n", mixed.Stdout.Replace("\r", ""));
        var none = CliHarness.Run(common.Concat(new[] { "--optimizers", "sgd,adam", "--out", Path.Combine(dir, "b") }).ToArray());
        Assert.Equal(2, none.ExitCode);
        Assert.Equal("natgrad: error: --damping does not apply to any compared method (sgd, adam)", Assert.Single(none.ErrorLines));
    }

    [Fact]
    public void Block_LayerBeyondTheDenseLimit_IsRefusedBeforeAnyStep()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", "block", "--hidden", "8", "--max-exact-params", "20", "--out", dir });
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal("natgrad: error: block NGD needs a dense 32×32 Fisher block for layer 'fc0' (32 parameters > the limit of 20); " +
                     "use tengrad, kfac or hf, or raise the limit (--max-exact-params / MaxExactParameters)", Assert.Single(outcome.ErrorLines));
    }
}
