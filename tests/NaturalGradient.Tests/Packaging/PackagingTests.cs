using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using NaturalGradient.Tests.Docs;

namespace NaturalGradient.Tests.Packaging;

/// <summary>
/// What a user outside this repository gets: the packed NaturalGradient and natgrad packages (from the folder
/// feed named by NATGRAD_PACKAGE_FEED), a fresh application that references the package and runs the README
/// quick start, the tool installed into a fresh tool path, and a program that references the library project.
/// </summary>
[Collection("Packaging")]
public sealed class PackagingTests
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(10);

    private static string Feed => Path.GetFullPath(Environment.GetEnvironmentVariable(RequiresPackageFeedFactAttribute.Variable)!);

    /// <summary>The build platform's CPU libtorch package, as the README tells Linux/Windows/macOS users to reference.</summary>
    private static string LibTorchPackage =>
        RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "libtorch-cpu-win-x64"
        : RuntimeInformation.IsOSPlatform(OSPlatform.OSX) ? "libtorch-cpu-osx-arm64"
        : "libtorch-cpu-linux-x64";

    private static string Property(string name) => RepositoryFiles.BuildProperty(name);

    /// <summary>The single .nupkg of <paramref name="id"/> in the feed (case-insensitive, symbols excluded).</summary>
    private static string Package(string id)
    {
        var files = Directory.GetFiles(Feed, "*.nupkg")
            .Where(f => Regex.IsMatch(Path.GetFileName(f), $@"^{Regex.Escape(id)}\.\d+\.\d+\.\d+(-[0-9A-Za-z.\-]+)?\.nupkg$", RegexOptions.IgnoreCase))
            .ToList();
        Assert.True(files.Count == 1, $"expected one {id} package in {Feed}, found {files.Count}: {string.Join(", ", Directory.GetFiles(Feed).Select(Path.GetFileName))}");
        return files[0];
    }

    private static XElement Nuspec(string nupkg, out IReadOnlyList<string> entries)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        entries = zip.Entries.Select(e => e.FullName).ToList();
        var nuspec = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/'));
        using var s = nuspec.Open();
        return XDocument.Load(s).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static string? Meta(XElement metadata, string name) => metadata.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    private static string PackageVersion(string id) => Meta(Nuspec(Package(id), out _), "version")!;

    private static string NewFolder(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"natgrad-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static void DeleteQuietly(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    [RequiresPackageFeedFact]
    public void CorePackage_DependsOnTorchSharpAndTheLoggingAbstractionsOnly()
    {
        var metadata = Nuspec(Package("NaturalGradient"), out _);
        var dependencies = metadata.Descendants().Where(e => e.Name.LocalName == "dependency")
            .Select(e => e.Attribute("id")!.Value).Distinct().Order(StringComparer.Ordinal).ToList();
        // No libtorch runtime: the application picks its backend. ILogger comes from the abstractions package only.
        Assert.Equal(new[] { "Microsoft.Extensions.Logging.Abstractions", "TorchSharp" }, dependencies);
    }

    [RequiresPackageFeedFact]
    public void CorePackage_CarriesMetadataDocsSymbolsAndTheBuildFix()
    {
        var nupkg = Package("NaturalGradient");
        var metadata = Nuspec(nupkg, out var entries);
        Assert.StartsWith(Property("VersionPrefix"), Meta(metadata, "version"));
        var license = metadata.Elements().Single(e => e.Name.LocalName == "license");
        Assert.Equal("expression", license.Attribute("type")?.Value);
        Assert.False(string.IsNullOrWhiteSpace(license.Value));
        Assert.Equal("README.md", Meta(metadata, "readme"));
        Assert.Contains("README.md", entries);
        var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
        Assert.StartsWith("https://", repository.Attribute("url")?.Value);
        Assert.False(string.IsNullOrWhiteSpace(Meta(metadata, "description")));
        Assert.Contains("lib/net10.0/NaturalGradient.dll", entries);
        Assert.Contains("lib/net10.0/NaturalGradient.xml", entries);
        Assert.Contains("buildTransitive/NaturalGradient.targets", entries);

        var snupkg = Path.ChangeExtension(nupkg, ".snupkg");
        Assert.True(File.Exists(snupkg), $"no symbol package {snupkg}");
        using var symbols = ZipFile.OpenRead(snupkg);
        Assert.Contains(symbols.Entries, e => e.FullName == "lib/net10.0/NaturalGradient.pdb");
    }

    [RequiresPackageFeedFact]
    public void ToolPackage_IsTheDotnetToolNatgrad_WithThePlatformPackage()
    {
        var metadata = Nuspec(Package("natgrad"), out var entries);
        Assert.Equal(Meta(Nuspec(Package("NaturalGradient"), out _), "version"), Meta(metadata, "version"));
        Assert.Contains(metadata.Descendants(), e => e.Name.LocalName == "packageType" && e.Attribute("name")?.Value == "DotnetTool");
        Assert.Equal("MIT", metadata.Elements().Single(e => e.Name.LocalName == "license").Value);

        string rid = RuntimeInformation.RuntimeIdentifier;
        Nuspec(Package($"natgrad.{rid}"), out var ridEntries);
        var settings = ridEntries.Single(e => e.EndsWith("/DotnetToolSettings.xml", StringComparison.Ordinal));
        using var zip = ZipFile.OpenRead(Package($"natgrad.{rid}"));
        using var s = zip.GetEntry(settings)!.Open();
        var command = XDocument.Load(s).Descendants().Single(e => e.Name.LocalName == "Command");
        Assert.Equal("natgrad", command.Attribute("Name")?.Value);
        Assert.Contains(ridEntries, e => e.EndsWith("/NaturalGradient.Training.dll", StringComparison.Ordinal));
        Assert.Contains(ridEntries, e => e.Contains("libtorch_cpu", StringComparison.Ordinal) || e.Contains("torch_cpu.dll", StringComparison.Ordinal));
    }

    /// <summary>The README's "install the package" path: a new console app, the package from the feed, the README quick start.</summary>
    [RequiresPackageFeedFact]
    public void FreshApp_ReferencingThePackage_RunsTheReadmeQuickStart()
    {
        string version = PackageVersion("NaturalGradient");
        var app = NewFolder("app");
        try
        {
            File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                    <RestoreAdditionalProjectSources>{Feed}</RestoreAdditionalProjectSources>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="NaturalGradient" Version="{version}" />
                    <PackageReference Include="{LibTorchPackage}" Version="{Property("LibTorchVersion")}" />
                  </ItemGroup>
                </Project>
                """);
            File.Copy(RepositoryFiles.Path("samples", "QuickStart", "Program.cs"), Path.Combine(app, "Program.cs"));
            // A private packages folder, so the package just packed is used even if another build of the same version
            // is cached; everything else (TorchSharp, libtorch) comes from the machine's cache as a fallback folder.
            string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } c ? c
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            var run = ChildProcess.Run(ChildProcess.Dotnet, app, BuildTimeout, "run", "-c", "Release",
                $"-p:RestorePackagesPath={Path.Combine(app, "packages")}", $"-p:RestoreFallbackFolders={cache}");
            Assert.True(run.ExitCode == 0, $"dotnet run exited with {run.ExitCode}:\n{run.Tail()}");
            var loss = Regex.Match(run.Output, @"final training loss (\d+\.\d+)");
            Assert.True(loss.Success, $"no loss line in:\n{run.Tail()}");
            Assert.True(double.Parse(loss.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) < 0.02, loss.Value);
            Assert.True(Directory.Exists(Path.Combine(app, "packages", "naturalgradient", version.ToLowerInvariant())),
                "the package was not restored from the feed");
        }
        finally { DeleteQuietly(app); }
    }

    /// <summary>The README's "install the tool" path: dotnet tool install into a fresh tool path, then a short training run.</summary>
    [RequiresPackageFeedFact]
    public void Tool_InstalledIntoAFreshToolPath_Trains()
    {
        string version = PackageVersion("natgrad");
        var root = NewFolder("tool");
        try
        {
            var tools = Path.Combine(root, "tools");
            var install = ChildProcess.Run(ChildProcess.Dotnet, root, BuildTimeout,
                "tool", "install", "--tool-path", tools, "--add-source", Feed, "natgrad", "--version", version);
            Assert.True(install.ExitCode == 0, $"dotnet tool install exited with {install.ExitCode}:\n{install.Tail()}");

            string natgrad = Path.Combine(tools, OperatingSystem.IsWindows() ? "natgrad.exe" : "natgrad");
            var output = Path.Combine(root, "run");
            var train = ChildProcess.Run(natgrad, root, BuildTimeout, "train", "--data", "weather", "--hidden", "16",
                "--optimizer", "tengrad", "--fisher", "exact", "--lr", "0.1", "--momentum", "0", "--damping", "0.01",
                "--epochs", "2", "--threads", "1", "--out", output);
            Assert.True(train.ExitCode == 0, $"natgrad train exited with {train.ExitCode}:\n{train.Tail()}");
            Assert.True(File.Exists(Path.Combine(output, "metrics.json")), $"no metrics.json in {output}:\n{train.Tail()}");
            Assert.Contains("train loss", train.Output);

            var help = ChildProcess.Run(natgrad, root, TimeSpan.FromMinutes(2), "--version");
            Assert.True(help.ExitCode == 0, help.Tail());
            Assert.Contains(Property("VersionPrefix"), help.Output);
        }
        finally { DeleteQuietly(root); }
    }

    /// <summary>
    /// The "build from source" path: a program outside the repository with a ProjectReference to the library. Its
    /// first TorchSharp call constructs a module (DllImport resolution, no TorchSharp fallback), which fails with
    /// GLIBCXX_3.4.32 on Debian 12 unless the program's copy of libLibTorchSharp.so is the patched one.
    /// </summary>
    [RequiresPackageFeedFact]
    public void ProgramWithAProjectReference_LoadsTorchSharp()
    {
        var app = NewFolder("projectref");
        try
        {
            File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                  </PropertyGroup>
                  <ItemGroup>
                    <ProjectReference Include="{RepositoryFiles.Path("src", "NaturalGradient", "NaturalGradient.csproj")}" />
                    <PackageReference Include="{LibTorchPackage}" Version="{Property("LibTorchVersion")}" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using TorchSharp;
                var layer = torch.nn.Linear(3, 2);
                var output = layer.call(torch.ones(4, 3));
                Console.WriteLine($"output shape {output.shape[0]}x{output.shape[1]}");
                """);
            // Debug: the referenced project builds into its own Debug folders, apart from the Release build under test.
            var run = ChildProcess.Run(ChildProcess.Dotnet, app, BuildTimeout, "run", "-c", "Debug");
            Assert.True(run.ExitCode == 0, $"dotnet run exited with {run.ExitCode}:\n{run.Tail()}");
            Assert.Contains("output shape 4x2", run.Output);
        }
        finally { DeleteQuietly(app); }
    }
}

[CollectionDefinition("Packaging")]
public sealed class PackagingCollection { }
