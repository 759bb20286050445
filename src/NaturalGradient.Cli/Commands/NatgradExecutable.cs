namespace NaturalGradient.Cli.Commands;

/// <summary>How to start this natgrad again as a child process (e.g. <c>natgrad scale-point</c>).</summary>
/// <param name="FileName">The program: the natgrad app host, or dotnet.</param>
/// <param name="Prefix">Arguments before natgrad's own (the path of natgrad.dll when run through dotnet).</param>
internal sealed record NatgradExecutable(string FileName, IReadOnlyList<string> Prefix)
{
    /// <summary>
    /// This process when it is natgrad; otherwise (dotnet natgrad.dll, or a test host that loaded natgrad.dll) the app
    /// host beside natgrad.dll, or <c>dotnet natgrad.dll</c>.
    /// </summary>
    public static NatgradExecutable Resolve()
    {
        var self = Environment.ProcessPath;
        var selfName = self is null ? "" : Path.GetFileNameWithoutExtension(self);
        if (self is not null && string.Equals(selfName, "natgrad", StringComparison.OrdinalIgnoreCase)) return new(self, Array.Empty<string>());
        var dll = typeof(Program).Assembly.Location;
        var host = Path.Combine(Path.GetDirectoryName(dll)!, OperatingSystem.IsWindows() ? "natgrad.exe" : "natgrad");
        if (File.Exists(host)) return new(host, Array.Empty<string>());
        var dotnet = self is not null && string.Equals(selfName, "dotnet", StringComparison.OrdinalIgnoreCase) ? self : "dotnet";
        return new(dotnet, new[] { dll });
    }

    /// <summary>The full argument list: <see cref="Prefix"/> then <paramref name="arguments"/>.</summary>
    public IEnumerable<string> With(IEnumerable<string> arguments) => Prefix.Concat(arguments);
}
