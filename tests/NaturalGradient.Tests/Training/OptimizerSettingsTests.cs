using NaturalGradient.Fisher;
using NaturalGradient.Training;

namespace NaturalGradient.Tests.Training;

public class OptimizerSettingsTests
{
    [Fact]
    public void Defaults_AreValid() => new OptimizerSettings().Validate();

    public static TheoryData<OptimizerSettings, string, string> Invalid => new()
    {
        { new OptimizerSettings { LearningRate = 0 }, "LearningRate", "LearningRate must be a finite number > 0, got 0" },
        { new OptimizerSettings { LearningRate = -1 }, "LearningRate", "LearningRate must be a finite number > 0, got -1" },
        { new OptimizerSettings { Momentum = 1 }, "Momentum", "Momentum must be in [0, 1), got 1" },
        { new OptimizerSettings { Damping = double.NaN }, "Damping", "Damping must be a finite number > 0, got NaN" },
        { new OptimizerSettings { McSamples = 0 }, "McSamples", "McSamples must be ≥ 1, got 0" },
        { new OptimizerSettings { FactorDecay = 1.5 }, "FactorDecay", "FactorDecay must be in [0, 1), got 1.5" },
        { new OptimizerSettings { KlClip = -0.1 }, "KlClip", "KlClip must be a finite number > 0, got -0.1" },
        { new OptimizerSettings { HfMaxIterations = 0 }, "HfMaxIterations", "HfMaxIterations must be ≥ 1, got 0" },
        { new OptimizerSettings { MetricSource = MetricSource.Unlabeled }, "MetricSource", "MetricSource Unlabeled needs Fisher MonteCarlo or Exact" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_NamesOptionAndValue(OptimizerSettings settings, string param, string messageStart)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(settings.Validate);
        Assert.Equal(param, ex.ParamName);
        Assert.StartsWith(messageStart, ex.Message);
    }

    [Fact]
    public void Unlabeled_WithMonteCarloFisher_IsValid() =>
        new OptimizerSettings { MetricSource = MetricSource.Unlabeled, Fisher = FisherKind.MonteCarlo }.Validate();

    [Fact]
    public void ToString_ListsEveryPropertySorted()
    {
        var text = new OptimizerSettings { LearningRate = 0.5 }.ToString();
        var names = typeof(OptimizerSettings).GetProperties().Select(p => p.Name).OrderBy(n => n, StringComparer.Ordinal).ToList();
        var positions = names.Select(n => text.IndexOf(n + " = ", StringComparison.Ordinal)).ToList();
        Assert.All(positions, p => Assert.True(p >= 0, text));
        Assert.Equal(positions.OrderBy(p => p), positions);
        Assert.Contains("LearningRate = 0.5,", text);
        Assert.Contains("KlClip = null", text);
        Assert.Contains("LrDecay = none", text);
    }

    [Theory]
    [InlineData("none", 1, 1, 1)]
    [InlineData("exp:0.5", 1, 0.5, 0.25)]
    [InlineData("step:2:0.1", 1, 1, 0.1)]
    public void LrSchedule_ParseAndFactor(string text, double f0, double f1, double f2)
    {
        var s = LrSchedule.Parse(text);
        Assert.Equal(new[] { f0, f1, f2 }, new[] { s.Factor(0), s.Factor(1), s.Factor(2) }.Select(v => Math.Round(v, 12)));
        Assert.Equal(text, s.ToString());
    }

    [Theory]
    [InlineData("exp")]
    [InlineData("exp:abc")]
    [InlineData("step:0.5")]
    [InlineData("cosine")]
    public void LrSchedule_BadText_SaysWhatIsExpected(string text)
    {
        var ex = Assert.Throws<FormatException>(() => LrSchedule.Parse(text));
        Assert.Equal($"'{text}' is not none, exp:GAMMA or step:EPOCHS:GAMMA", ex.Message);
    }

    [Theory]
    [InlineData("exp:0")]
    [InlineData("exp:1.5")]
    [InlineData("step:0:0.5")]
    public void LrSchedule_OutOfRange_SaysTheRange(string text)
    {
        var ex = Assert.Throws<FormatException>(() => LrSchedule.Parse(text));
        Assert.Contains("GAMMA must be in (0, 1] and EPOCHS ≥ 1", ex.Message);
    }
}
