using NaturalGradient.Numerics;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// glibc's thresholds set by <see cref="NativeAllocator.RetainFreedMemory"/>: left alone when the environment sets a
/// threshold, set on Linux with glibc otherwise.
/// </summary>
[Collection("Torch")]
public class NativeAllocatorTests
{
    [Theory]
    [InlineData(null, null, null, null, false)]
    [InlineData("", "", "", "", false)]
    [InlineData("131072", null, null, null, true)]
    [InlineData(null, "65536", null, null, true)]
    [InlineData(null, null, "0", null, true)]
    [InlineData(null, null, null, "glibc.malloc.trim_threshold=131072", true)]
    [InlineData(null, null, null, "glibc.pthread.rseq=0:glibc.malloc.mmap_threshold=65536", true)]
    [InlineData(null, null, null, "glibc.malloc.top_pad=0", true)]
    [InlineData(null, null, null, "glibc.malloc.arena_max=1", false)]
    [InlineData(null, null, null, "glibc.pthread.rseq=0", false)]
    public void Environment_ChoosesTheThresholds_WhenAThresholdVariableOrTunableIsSet(string? trim, string? mmap, string? topPad, string? tunables, bool expected)
    {
        var variables = new Dictionary<string, string?>
        {
            ["MALLOC_TRIM_THRESHOLD_"] = trim, ["MALLOC_MMAP_THRESHOLD_"] = mmap, ["MALLOC_TOP_PAD_"] = topPad, ["GLIBC_TUNABLES"] = tunables,
        };
        Assert.Equal(expected, NativeAllocator.SetsThresholds(name => variables.GetValueOrDefault(name)));
    }

    /// <summary>
    /// On Linux with glibc and no allocator variable set, both mallopt calls succeed (glibc accepts 32 MiB as the mmap
    /// threshold, its ceiling on 64-bit systems); elsewhere nothing is set. The effect on a step (page faults per step) is
    /// the benchmark's to measure: glibc's own dynamic thresholds make a one-process test of it depend on what the process
    /// allocated before.
    /// </summary>
    [Fact]
    public void RetainFreedMemory_SetsBothThresholds_OnGlibc()
    {
        bool applied = NativeAllocator.RetainFreedMemory();
        bool glibc = OperatingSystem.IsLinux() && GlibcPresent()
                     && !NativeAllocator.EnvironmentSetsThresholds;
        Assert.Equal(glibc, applied);
        Assert.Equal(applied, NativeAllocator.Applied);
        Assert.Equal(applied, NativeAllocator.RetainFreedMemory());   // idempotent
    }

    private static bool GlibcPresent()
    {
        try { return System.Runtime.InteropServices.NativeLibrary.TryLoad("libc.so.6", out var libc) && System.Runtime.InteropServices.NativeLibrary.TryGetExport(libc, "gnu_get_libc_version", out _); }
        catch (DllNotFoundException) { return false; }
    }
}
