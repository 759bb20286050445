using System.Runtime.InteropServices;

namespace NaturalGradient.Numerics;

/// <summary>
/// Tells glibc's allocator, which libtorch's CPU tensors come from, to keep freed memory for the next allocation
/// instead of handing it back to the kernel: allocations of up to <see cref="MmapThreshold"/> bytes come from the heap,
/// and the heap's free top is returned only beyond <see cref="TrimThreshold"/> bytes. Opt-in, for an application's
/// start-up; the <c>natgrad</c> tool calls it.
/// </summary>
/// <remarks>
/// <para>A training step frees and allocates tensors of the same sizes on every step. With glibc's defaults, whether a
/// freed block of a few megabytes is unmapped or trimmed from the heap depends on the heap's state, so the next step
/// maps fresh pages and touches each one (a minor page fault): in the benchmark's single-configuration loop
/// (<c>loop --method tengrad --depth 16</c>, the figure-5 net of 16 layers) one run of TENGraD's step took 242 page
/// faults per step and 9.05 ms, the next 18 and 7.07 ms; with these thresholds 2–5 faults per step
/// (docs/PERFORMANCE.md, "The allocator's thresholds").</para>
/// <para>The setting is process-wide and changes how much memory the process keeps: up to
/// <see cref="TrimThreshold"/> bytes of freed heap stay resident. It is left alone when the process chose already
/// (any of MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_ set, or GLIBC_TUNABLES naming a malloc
/// tunable) and is a no-op outside Linux with glibc.</para>
/// </remarks>
public static class NativeAllocator
{
    /// <summary>Largest allocation served from the heap: 32 MiB, glibc's ceiling for it on 64-bit systems.</summary>
    public const int MmapThreshold = 32 << 20;

    /// <summary>Free memory at the heap's top kept before trimming: 256 MiB.</summary>
    public const int TrimThreshold = 256 << 20;

    private static readonly object Gate = new();

    /// <summary>True once <see cref="RetainFreedMemory"/> has set the thresholds in this process.</summary>
    public static bool Applied { get; private set; }

    /// <summary>
    /// Sets glibc's mmap threshold to <see cref="MmapThreshold"/> and its trim threshold to <see cref="TrimThreshold"/>
    /// unless the environment already sets the allocator (see remarks) or this is not Linux with glibc. Idempotent and
    /// thread-safe; best called before the first tensor is made.
    /// </summary>
    /// <returns>True when the thresholds are set (now or by an earlier call).</returns>
    public static bool RetainFreedMemory()
    {
        lock (Gate)
        {
            if (Applied) return true;
            if (!OperatingSystem.IsLinux() || EnvironmentChoosesAllocator(Environment.GetEnvironmentVariable)) return false;
            try
            {
                if (GnuLibcVersion() == IntPtr.Zero) return false;
                // mallopt returns 1 on success; the trim threshold set explicitly also stops glibc adjusting both at run time.
                Applied = MallOpt(MallocMmapThreshold, MmapThreshold) == 1 && MallOpt(MallocTrimThreshold, TrimThreshold) == 1;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return false;   // not glibc (musl has no gnu_get_libc_version)
            }
            return Applied;
        }
    }

    /// <summary>True when one of glibc's allocator variables is set (non-empty), or GLIBC_TUNABLES names a malloc tunable.</summary>
    internal static bool EnvironmentChoosesAllocator(Func<string, string?> variable) =>
        new[] { "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_" }.Any(v => !string.IsNullOrEmpty(variable(v)))
        || (variable("GLIBC_TUNABLES") ?? "").Contains("glibc.malloc.", StringComparison.Ordinal);

    private const int MallocTrimThreshold = -1, MallocMmapThreshold = -3;   // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    [DllImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static extern IntPtr GnuLibcVersion();
}
