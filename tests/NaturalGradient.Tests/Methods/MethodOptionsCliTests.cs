using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Tests.Cli;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Methods;

/// <summary>--kbfgs-memory, --ksd-dimension, --factor-precision, --inverse-precision and the K-FAC/EKFAC settings: validated before any work, checked against the method, and passed on.</summary>
[Collection("Torch")]
public class MethodOptionsCliTests
{
    [Theory]
    [InlineData("kbfgs", "--kbfgs-memory", "-1", "natgrad: error: --kbfgs-memory must be ≥ 0, got -1")]
    [InlineData("ksd", "--ksd-dimension", "0", "natgrad: error: --ksd-dimension must be ≥ 1, got 0")]
    [InlineData("kfac", "--factor-precision", "half", "natgrad: error: --factor-precision: 'half' is not one of model, bfloat16")]
    [InlineData("kfac --dtype float64", "--factor-precision", "bfloat16", "natgrad: error: --factor-precision bfloat16 applies to float32 models; with --dtype float64 the factors are float64 (drop one of the two)")]
    [InlineData("ekfac", "--inverse-precision", "half", "natgrad: error: --inverse-precision: 'half' is not one of model, bfloat16")]
    [InlineData("kfac --dtype float64", "--inverse-precision", "bfloat16", "natgrad: error: --inverse-precision bfloat16 applies to float32 models; with --dtype float64 the solve is float64 (drop one of the two)")]
    public void OutOfRange_IsOneLineError_BeforeAnyWork(string method, string option, string value, string message)
    {
        var dir = Path.Combine(CliHarness.TempDir(), "run");
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer" }.Concat(method.Split(' '))
            .Concat(new[] { option, value, "--epochs", "1", "--out", dir }).ToArray());
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal(new[] { message }, outcome.ErrorLines);
        Assert.False(Directory.Exists(dir));
    }

    [Theory]
    [InlineData("kfac", "--kbfgs-memory", "4", "natgrad: error: --kbfgs-memory does not apply to kfac")]
    [InlineData("kbfgs", "--ksd-dimension", "4", "natgrad: error: --ksd-dimension does not apply to kbfgs")]
    [InlineData("tengrad", "--factor-precision", "bfloat16", "natgrad: error: --factor-precision does not apply to tengrad")]
    [InlineData("ksd", "--kbfgs-memory", "4", "natgrad: error: --kbfgs-memory does not apply to ksd (it reads --damping, --ksd-dimension)")]
    [InlineData("tengrad", "--kl-clip-form", "gradient", "natgrad: error: --kl-clip-form has no effect without a KL clip (tengrad runs with --kl-clip none here); give --kl-clip X")]
    public void OptionTheMethodDoesNotRead_IsAnErrorForTrain(string method, string option, string value, string start)
    {
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", method, option, value, "--epochs", "1", "--out", CliHarness.TempDir() });
        Assert.Equal(2, outcome.ExitCode);
        Assert.StartsWith(start, Assert.Single(outcome.ErrorLines));
    }

    [Fact]
    public void KlClipFormWithTheClipTurnedOff_SaysTheClipIsMissing()
    {
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--optimizer", "kfac", "--kl-clip", "none", "--kl-clip-form", "step", "--epochs", "1", "--out", CliHarness.TempDir() });
        Assert.Equal(2, outcome.ExitCode);
        Assert.Equal("natgrad: error: --kl-clip-form has no effect without a KL clip (kfac runs with --kl-clip none here); give --kl-clip X", Assert.Single(outcome.ErrorLines));
    }

    [Fact]
    public void Compare_NotesEachOptionForTheMethodThatDoesNotReadIt()
    {
        var outcome = CliHarness.Run(new[]
        {
            "compare", "--data", "tiny", "--hidden", "4", "--optimizers", "kbfgs,ksd", "--kbfgs-memory", "3", "--ksd-dimension", "2",
            "--lr-grid", "0.1", "--seeds", "0", "--epochs", "1", "--batch-sizes", "16", "--damping", "0.1",
            "--fisher", "empirical", "--threads", "1", "--out", CliHarness.TempDir(),
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Contains("note: --kbfgs-memory does not apply to ksd (used by the others)", outcome.Stdout);
        Assert.Contains("note: --ksd-dimension does not apply to kbfgs (used by the others)", outcome.Stdout);
    }

    [Fact]
    public void Train_WritesBothSettingsIntoConfig()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", "ksd", "--ksd-dimension", "3", "--epochs", "1",
            "--batch-size", "16", "--threads", "1", "--out", dir,
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var config = File.ReadAllText(Path.Combine(dir, "config.json"));
        Assert.Contains("\"ksd_dimension\": 3", config);
    }

    [Fact]
    public void Train_FactorPrecisionReachesConfigAndTrains()
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", "ekfac", "--factor-precision", "bfloat16", "--epochs", "1",
            "--batch-size", "16", "--threads", "1", "--out", dir,
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var config = File.ReadAllText(Path.Combine(dir, "config.json"));
        Assert.Contains("\"kfac_factor_precision\": \"bfloat16\"", config);
    }

    [Theory]
    [InlineData("kfac")]
    [InlineData("ekfac")]
    public void Train_InversePrecisionReachesConfigAndTrains(string optimizer)
    {
        var dir = CliHarness.TempDir();
        var outcome = CliHarness.Run(new[]
        {
            "train", "--data", "tiny", "--hidden", "4", "--optimizer", optimizer, "--inverse-precision", "bfloat16", "--epochs", "1",
            "--batch-size", "16", "--threads", "1", "--out", dir,
        });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var config = File.ReadAllText(Path.Combine(dir, "config.json"));
        Assert.Contains("\"kfac_inverse_precision\": \"bfloat16\"", config);
    }

    [Fact]
    public void Force_OnAFolderThatDoesNotExistYet_Trains()
    {
        var dir = Path.Combine(CliHarness.TempDir(), "new");
        var outcome = CliHarness.Run(new[] { "train", "--data", "tiny", "--hidden", "4", "--epochs", "1", "--threads", "1", "--out", dir, "--force" });
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.True(File.Exists(Path.Combine(dir, "metrics.json")));
    }

    [Fact]
    public void Settings_ReachTheMethods()
    {
        using var _ = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 3, 4, 2 }, seed: 1);
        using var generator = new Generator(1);
        OptimizerContext Context(OptimizerSettings s) => new()
        {
            Model = model, Likelihood = new NaturalGradient.Likelihoods.CategoricalLikelihood(), Settings = s, Generator = generator, StepsPerEpoch = 1,
        };
        var catalog = OptimizerCatalog.Default;
        using (var kbfgs = (KbfgsTrainingOptimizer)catalog.Create(Context(new OptimizerSettings { Name = "kbfgs", Damping = 0.1, KbfgsMemory = 5 })))
            Assert.Equal(5, kbfgs.Curvature.Options.Memory);
        using (var ksd = (KsdTrainingOptimizer)catalog.Create(Context(new OptimizerSettings { Name = "ksd", Damping = 0.1, KsdDimension = 3 })))
            Assert.Equal(3, ksd.Options.Dimension);
    }

    /// <summary>EKFAC reads --kfac-damping (its divisor is S + λ or S plus K-FAC's factored terms) and its eigenbasis
    /// period; natgrad's defaults give K-FAC's blocks inverses every 10 steps and EKFAC's an eigenbasis every 20.</summary>
    [Fact]
    public void KroneckerSettings_ReachTheBlocks()
    {
        using var _ = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 3, 4, 2 }, seed: 1);
        using var generator = new Generator(1);
        var x = randn(8, 3, dtype: ScalarType.Float64, generator: generator);
        var y = randint(0, 2, new long[] { 8 }, generator: generator);
        KfacOptions BlockOptions(OptimizerSettings s)
        {
            using var optimizer = (NaturalGradientTrainingOptimizer)OptimizerCatalog.Default.Create(new OptimizerContext
            {
                Model = model, Likelihood = new NaturalGradient.Likelihoods.CategoricalLikelihood(), Settings = s, Generator = generator, StepsPerEpoch = 1,
            });
            optimizer.Step(x, y);
            var curvature = (BlockDiagonalCurvature)optimizer.Optimizer.Preconditioner.Curvature;
            return curvature.Block(optimizer.Optimizer.Preconditioner.Layers[0].Name) switch
            {
                KfacBlock k => k.Options,
                EkfacBlock e => e.Options,
                var b => throw new InvalidOperationException($"unexpected block {b.GetType().Name}"),
            };
        }
        Assert.Equal(10, BlockOptions(MethodDefaults.For("kfac")).InverseUpdatePeriod);
        var ekfac = BlockOptions(MethodDefaults.For("ekfac"));
        Assert.Equal(20, ekfac.InverseUpdatePeriod);
        Assert.Equal(KfacDampingMode.Factored, ekfac.DampingMode);
        Assert.Equal(KfacDampingMode.Eigenbasis, BlockOptions(MethodDefaults.For("ekfac") with { KfacDamping = KfacDampingMode.Eigenbasis }).DampingMode);
        Assert.Contains(nameof(OptimizerSettings.KfacDamping), MethodDefaults.Reads(MethodDefaults.For("ekfac"))!);
    }
}
