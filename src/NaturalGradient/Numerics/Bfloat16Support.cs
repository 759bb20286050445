namespace NaturalGradient.Numerics;

/// <summary>
/// Whether this CPU has bfloat16 matrix instructions, which the bfloat16 solve (<see cref="Curvature.Kfac.KfacInversePrecision.Bfloat16"/>)
/// needs to be faster than float32: on Linux, from /proc/cpuinfo (x86 "flags": avx512_bf16 or amx_bf16; Arm "Features":
/// bf16). Without them libtorch emulates bfloat16 arithmetic.
/// </summary>
internal static class Bfloat16Support
{
    private static readonly Lazy<bool?> NativeValue = new(() => Read("/proc/cpuinfo"));

    /// <summary>True or false on Linux with a readable /proc/cpuinfo; null where it cannot be told (other systems). False
    /// once <see cref="OneDnnIsaCap"/> has capped oneDNN at AVX2, which leaves bfloat16 products emulated.</summary>
    public static bool? Native => OneDnnIsaCap.Applied is not null ? false : NativeValue.Value;

    /// <summary><see cref="FromCpuInfo"/> of the file at <paramref name="path"/>; null on another system or when it cannot be read.</summary>
    internal static bool? Read(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            return File.Exists(path) ? FromCpuInfo(File.ReadAllText(path)) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// From the text of /proc/cpuinfo: true when a "flags" line lists avx512_bf16 or amx_bf16 or a "Features" line lists
    /// bf16, false when such lines exist without them, null when there is neither kind of line.
    /// </summary>
    internal static bool? FromCpuInfo(string text)
    {
        bool? found = null;
        foreach (var line in text.Split('\n'))
        {
            int colon = line.IndexOf(':');
            if (colon < 0) continue;
            string key = line[..colon].Trim();
            if (key is not ("flags" or "Features")) continue;
            var words = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (key == "flags" ? words.Any(w => w is "avx512_bf16" or "amx_bf16") : words.Contains("bf16")) return true;
            found = false;
        }
        return found;
    }
}
