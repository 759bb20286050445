using System.Runtime.InteropServices;

namespace NaturalGradient.Tests;

/// <summary>Peak resident memory of this process (Linux): VmHWM, resettable through /proc/self/clear_refs.</summary>
/// <remarks>
/// glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MB), after which blocks of that
/// size come from the heap and stay resident when freed: in a long test run the peak then also counted the heap's
/// retained fragments (a test measuring 260–310 MB on its own measured 589 MB after the rest of the suite). The first
/// reset fixes the threshold at glibc's initial 128 KB, so large blocks are mapped and returned as they are freed and
/// the peak follows the memory in use.
/// </remarks>
public static class PeakMemory
{
    public static bool Available => File.Exists("/proc/self/status") && File.Exists("/proc/self/clear_refs");

    /// <summary>Resets the peak to the current resident size.</summary>
    public static void Reset()
    {
        FixMmapThreshold();
        File.WriteAllText("/proc/self/clear_refs", "5");
    }

    private static bool _thresholdFixed;

    private static void FixMmapThreshold()
    {
        if (_thresholdFixed) return;
        _thresholdFixed = true;
        const int M_MMAP_THRESHOLD = -3;
        try { MallOpt(M_MMAP_THRESHOLD, 128 * 1024); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }   // not glibc: leave the allocator alone
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    /// <summary>Peak resident set size since the last reset, in bytes.</summary>
    public static long PeakBytes() => Field("VmHWM:");

    public static long ResidentBytes() => Field("VmRSS:");

    private static long Field(string name)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(name));
        return long.Parse(line[name.Length..].Trim().Split(' ')[0]) * 1024;
    }
}
