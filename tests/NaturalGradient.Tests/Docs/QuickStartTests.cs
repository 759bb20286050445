using System.Reflection;

namespace NaturalGradient.Tests.Docs;

[Collection("Torch")]
public class QuickStartTests
{
    private static string RepoFile(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "NaturalGradient.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        return Path.Combine(new[] { dir!.FullName }.Concat(parts).ToArray());
    }

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
        var sample = File.ReadAllText(RepoFile("samples", "QuickStart", "Program.cs")).Trim();
        var readme = File.ReadAllText(RepoFile("README.md"));
        Assert.Contains(sample, readme.Replace("\r\n", "\n"));
    }
}
