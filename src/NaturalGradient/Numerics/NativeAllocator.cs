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
/// faults per step and 9.05 ms, the next 18 and 7.07 ms; with these thresholds 2–4 faults per step
/// (docs/PERFORMANCE.md, "The allocator's thresholds").</para>
/// <para>The setting is process-wide and changes how much memory the process keeps: up to
/// <see cref="TrimThreshold"/> bytes of freed heap stay resident. It is left alone when the process chose these
/// thresholds already (any of MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_, MALLOC_TOP_PAD_ set, or GLIBC_TUNABLES
/// naming glibc.malloc.trim_threshold, mmap_threshold or top_pad) and is a no-op outside Linux with glibc.</para>
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
    /// <returns>True when both thresholds are set (now or by an earlier call); false when nothing was set, or when glibc
    /// refused the second after taking the first (the trim threshold is set first: alone, it already keeps freed
    /// heap).</returns>
    public static bool RetainFreedMemory()
    {
        lock (Gate)
        {
            if (Applied) return true;
            if (!OperatingSystem.IsLinux() || EnvironmentSetsThresholds) return false;
            try
            {
                if (GnuLibcVersion() == IntPtr.Zero) return false;
                // mallopt returns 1 on success; the trim threshold set explicitly also stops glibc adjusting both at run time.
                Applied = MallOpt(MallocTrimThreshold, TrimThreshold) == 1 && MallOpt(MallocMmapThreshold, MmapThreshold) == 1;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return false;   // not glibc (musl has no gnu_get_libc_version)
            }
            return Applied;
        }
    }

    /// <summary>True when the process started with its own thresholds (see <see cref="RetainFreedMemory"/>'s remarks); then nothing is set.</summary>
    public static bool EnvironmentSetsThresholds => SetsThresholds(Environment.GetEnvironmentVariable);

    /// <summary>
    /// True when <paramref name="variable"/> (an environment) sets one of the thresholds this class would set, or the top pad that trimming keeps:
    /// MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_ or MALLOC_TOP_PAD_ non-empty, or GLIBC_TUNABLES naming
    /// glibc.malloc.trim_threshold, glibc.malloc.mmap_threshold or glibc.malloc.top_pad. Other allocator settings
    /// (MALLOC_ARENA_MAX, glibc.malloc.arena_max, …) do not touch these thresholds and are kept alongside them.
    /// </summary>
    internal static bool SetsThresholds(Func<string, string?> variable) =>
        ThresholdVariables.Any(v => !string.IsNullOrEmpty(variable(v)))
        || (variable("GLIBC_TUNABLES") ?? "").Split(':').Any(t => ThresholdTunables.Any(n => t.StartsWith(n + "=", StringComparison.Ordinal)));

    private static readonly string[] ThresholdVariables = { "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_" };
    private static readonly string[] ThresholdTunables = { "glibc.malloc.trim_threshold", "glibc.malloc.mmap_threshold", "glibc.malloc.top_pad" };

    private const int MallocTrimThreshold = -1, MallocMmapThreshold = -3;   // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int MallOpt(int parameter, int value);

    [DllImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static extern IntPtr GnuLibcVersion();
}
