using System.Globalization;
using System.Runtime.InteropServices;

namespace NaturalGradient.Training;

/// <summary>Cheap reads of the process's resident set size.</summary>
public static class MemoryProbe
{
    /// <summary>
    /// Resident set size in MiB: from <c>/proc/self/statm</c> on Linux (one small file read), otherwise
    /// <see cref="Environment.WorkingSet"/>.
    /// </summary>
    public static double ResidentMb()
    {
        try
        {
            if (OperatingSystem.IsLinux())
            {
                var fields = File.ReadAllText("/proc/self/statm").Split(' ');
                long pages = long.Parse(fields[1], CultureInfo.InvariantCulture);
                return pages * (double)Environment.SystemPageSize / (1024 * 1024);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            // fall through to the portable reading
        }
        return Environment.WorkingSet / (1024.0 * 1024.0);
    }

    /// <summary>Peak resident set size of this process in MiB (VmHWM on Linux), else the current working set.</summary>
    public static double PeakResidentMb()
    {
        if (OperatingSystem.IsLinux() && File.Exists("/proc/self/status"))
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            if (line is not null) return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        }
        return Environment.WorkingSet / (1024.0 * 1024.0);
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);

    /// <summary>
    /// Returns freed native heap pages to the OS (glibc <c>malloc_trim</c>; a no-op elsewhere). libtorch's CPU
    /// tensors live on the C heap: batches of varying shapes (the last batch of an epoch, evaluation batches)
    /// fragment it, and without a trim the freed pages stay resident.
    /// </summary>
    public static void TrimNativeHeap()
    {
        if (!OperatingSystem.IsLinux()) return;
        try { MallocTrim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }
}
