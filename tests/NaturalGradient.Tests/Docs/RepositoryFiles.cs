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
}
