namespace NaturalGradient.Tests.Docs;

/// <summary>Paths inside the repository checkout that the tests run from.</summary>
internal static class RepositoryFiles
{
    /// <summary>The folder holding NaturalGradient.slnx, found upwards from the test binaries.</summary>
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "NaturalGradient.slnx"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException($"no NaturalGradient.slnx above {AppContext.BaseDirectory}");
        }
    }

    public static string Path(params string[] parts) => System.IO.Path.Combine(new[] { Root }.Concat(parts).ToArray());

    public static string Read(params string[] parts) => File.ReadAllText(Path(parts)).Replace("\r\n", "\n");

    /// <summary>The value of the MSBuild property <paramref name="name"/> as Directory.Build.props sets it.</summary>
    public static string BuildProperty(string name)
    {
        var m = System.Text.RegularExpressions.Regex.Match(Read("Directory.Build.props"), $"<{name}>([^<]+)</{name}>");
        Xunit.Assert.True(m.Success, $"Directory.Build.props has no <{name}>");
        return m.Groups[1].Value;
    }
}
