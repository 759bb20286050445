using System.Reflection;

namespace NaturalGradient.Tests.Docs;

[Collection("Torch")]
public class QuickStartTests
{
    [Fact]
    public void QuickStartSample_TrainsToALowLoss()
    {
        var entry = Assembly.Load("QuickStart").EntryPoint!;
        var exit = (int)entry.Invoke(null, new object[] { Array.Empty<string>() })!;
        Assert.Equal(0, exit);
    }

    /// <summary>The README's NaturalGradientDescent example trains (loss below 0.02 after 100 steps, as printed) and leaves .grad unset.</summary>
    [Fact]
    public void OptimizerStepSample_TrainsAndLeavesTheGradientUnset()
    {
        var text = SampleRunner.Run("OptimizerStep");
        var last = System.Text.RegularExpressions.Regex.Match(text, @"step 100: loss (\d+\.\d+)");
        Assert.True(last.Success, text);
        Assert.True(double.Parse(last.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < 0.02, text);
        Assert.Contains("fc1.weight.grad after the steps: unset", text);
    }

    [Fact]
    public void Readme_ShowsTheCompiledOptimizerStepSampleVerbatim()
    {
        var sample = RepositoryFiles.Read("samples", "OptimizerStep", "Program.cs").Trim();
        Assert.Contains(sample, RepositoryFiles.Read("README.md"));
    }

    [Fact]
    public void Readme_ShowsTheCompiledQuickStartVerbatim()
    {
        var sample = RepositoryFiles.Read("samples", "QuickStart", "Program.cs").Trim();
        Assert.Contains(sample, RepositoryFiles.Read("README.md"));
    }
}
