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

    [Fact]
    public void Readme_ShowsTheCompiledQuickStartVerbatim()
    {
        var sample = RepositoryFiles.Read("samples", "QuickStart", "Program.cs").Trim();
        Assert.Contains(sample, RepositoryFiles.Read("README.md"));
    }
}
