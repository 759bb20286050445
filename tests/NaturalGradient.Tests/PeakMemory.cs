namespace NaturalGradient.Tests;

/// <summary>Peak resident memory of this process (Linux): VmHWM, resettable through /proc/self/clear_refs.</summary>
public static class PeakMemory
{
    public static bool Available => File.Exists("/proc/self/status") && File.Exists("/proc/self/clear_refs");

    /// <summary>Resets the peak to the current resident size.</summary>
    public static void Reset() => File.WriteAllText("/proc/self/clear_refs", "5");

    /// <summary>Peak resident set size since the last reset, in bytes.</summary>
    public static long PeakBytes() => Field("VmHWM:");

    public static long ResidentBytes() => Field("VmRSS:");

    private static long Field(string name)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(name));
        return long.Parse(line[name.Length..].Trim().Split(' ')[0]) * 1024;
    }
}
