using System.Text;
using NaturalGradient.Tests.Docs;

namespace NaturalGradient.Tests.Packaging;

/// <summary>
/// The repository's build output on Linux: libtorch is linked from the NuGet package cache, not copied into every
/// application, test and benchmark folder (Directory.Build.props), and the libLibTorchSharp.so fix of
/// NaturalGradient.targets never writes through such a link into the cache.
/// </summary>
public sealed class BuildOutputTests
{
    private static string Cache => Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static string Native(string packageFolder, string file) =>
        Path.Combine(packageFolder, "runtimes", "linux-x64", "native", file);

    private static string Output(string file) => Native(AppContext.BaseDirectory, file);

    /// <summary>Device and inode of the file <paramref name="path"/> names, following symbolic links (coreutils stat).</summary>
    private static string FileIdentity(string path)
    {
        var stat = ChildProcess.Run("stat", AppContext.BaseDirectory, TimeSpan.FromMinutes(1), "-L", "-c", "%d:%i", path);
        Assert.True(stat.ExitCode == 0, $"stat {path}: {stat.Output}");
        return stat.Output.Trim();
    }

    [LinuxFact]
    public void LibTorch_InTheOutputFolder_IsTheCachedFileItself()
    {
        string cached = Native(Path.Combine(Cache, "libtorch-cpu-linux-x64", RepositoryFiles.BuildProperty("LibTorchVersion")), "libtorch_cpu.so");
        Assert.True(File.Exists(cached), $"no {cached}");
        Assert.True(File.Exists(Output("libtorch_cpu.so")), $"no {Output("libtorch_cpu.so")}");
        // A symbolic or hard link: the same device and inode. A copy would be a second 460 MB file.
        Assert.Equal(FileIdentity(cached), FileIdentity(Output("libtorch_cpu.so")));
    }

    [LinuxFact]
    public void LibTorchSharpFix_ChangesTheOutputCopy_NeverThePackageCache()
    {
        string cached = Native(Path.Combine(Cache, "torchsharp", RepositoryFiles.BuildProperty("TorchSharpVersion")), "libLibTorchSharp.so");
        Assert.True(File.Exists(cached), $"no {cached}");
        byte[] original = File.ReadAllBytes(cached), built = File.ReadAllBytes(Output("libLibTorchSharp.so"));
        byte[] tag = Encoding.ASCII.GetBytes("GLIBCXX_3.4.32\0");
        Assert.True(original.AsSpan().IndexOf(tag) >= 0, $"{cached} does not name GLIBCXX_3.4.32: not the library the fix is for");

        string? libstdcxx = new[] { "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6" }
            .FirstOrDefault(File.Exists);
        bool systemHasTag = libstdcxx is not null && File.ReadAllBytes(libstdcxx).AsSpan().IndexOf(tag) >= 0;
        Assert.Equal(original.Length, built.Length);
        int differing = Enumerable.Range(0, original.Length).Count(i => original[i] != built[i]);
        // The fix sets one bit (VER_FLG_WEAK) in one Vernaux entry; a system libstdc++ with the tag needs no fix.
        Assert.Equal(systemHasTag ? 0 : 1, differing);
        if (!systemHasTag) Assert.NotEqual(FileIdentity(cached), FileIdentity(Output("libLibTorchSharp.so")));
    }
}

/// <summary>A fact about Linux build output; skipped on other systems.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux()) Skip = "about the Linux build output";
    }
}
