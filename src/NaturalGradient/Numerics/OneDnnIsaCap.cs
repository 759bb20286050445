using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace NaturalGradient.Numerics;

/// <summary>
/// Caps oneDNN, which libtorch uses for CPU convolutions, at AVX2 on AMD processors with AVX-512 when the library first
/// covers a Conv2d layer, unless the process already chose its instruction set (ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA
/// set, to any value).
/// </summary>
/// <remarks>
/// <para>On an AMD EPYC with AVX-512 (libtorch 2.10 CPU, TorchSharp 0.107), the input gradient of Conv2d came back with
/// NaN entries, or with different finite values, from one run of the same seeded program to the next: in
/// samples/ConvNet, plain SGD hit a NaN input gradient of its second convolution in 0 to 89 of 150 steps per run and
/// K-FAC in 0 or 1, with oneDNN allowed AVX-512 (its default there) or capped at AVX512_CORE or AVX512_CORE_BF16;
/// capped at AVX2, six runs out of six gave the same numbers and no NaN (docs/TORCHSHARP-ON-LINUX.md).</para>
/// <para>The cap also takes oneDNN's bfloat16 instructions away: the bfloat16 K-FAC solve then runs emulated (MLP
/// 784-512-512-10, batch 256: 11.2 SGD steps per step against 1.8 uncapped). So it is applied only for models with a
/// covered Conv2d layer, where it protects the gradients, and <see cref="Bfloat16Support.Native"/> reports false once
/// it is applied. oneDNN reads the variable once, at its first dispatch: the cap takes effect when the optimiser or
/// preconditioner is built before the process runs its first convolution (or bfloat16 product), as in the usual order
/// (model, optimiser, training loop). Otherwise call <see cref="ForConvolutions"/> before the first convolution, or start
/// the process with ONEDNN_MAX_CPU_ISA set (AVX2 for the cap, DEFAULT for oneDNN's own choice, which this class then
/// leaves alone): a variable set from .NET on Unix does not reach native code.</para>
/// </remarks>
public static class OneDnnIsaCap
{
    /// <summary>The value set ("AVX2"), or null when nothing was set (another CPU, the process chose already, or no
    /// Conv2d layer has been covered yet).</summary>
    public static string? Applied { get; private set; }

    private static readonly object Gate = new();
    private static bool _decided;

    /// <summary>
    /// Applies the cap once per process if this CPU and environment call for it (later calls do nothing). The library
    /// calls it when it first covers a Conv2d layer; call it yourself before the first convolution when a process runs
    /// convolutions before it builds a natural-gradient optimiser (an SGD baseline first, say). Thread-safe.
    /// </summary>
    public static void ForConvolutions()
    {
        lock (Gate)
        {
            if (_decided) return;
            _decided = true;
            try
            {
                if (!ShouldCap(Vendor(), Avx512F.IsSupported, Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA"),
                        Environment.GetEnvironmentVariable("DNNL_MAX_CPU_ISA")))
                    return;
                // .NET keeps its own copy of the environment on Unix: native getenv sees only what setenv wrote.
                if ((OperatingSystem.IsLinux() || OperatingSystem.IsFreeBSD()) && SetEnv("ONEDNN_MAX_CPU_ISA", "AVX2", 0) != 0) return;
                Environment.SetEnvironmentVariable("ONEDNN_MAX_CPU_ISA", "AVX2");
                Applied = "AVX2";
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or PlatformNotSupportedException)
            {
                // No libc setenv here: leave oneDNN's choice.
            }
        }
    }

    /// <summary>True for an AMD x86 processor with AVX-512 when neither variable is set (null or empty).</summary>
    internal static bool ShouldCap(string? vendor, bool avx512, string? onednn, string? dnnl) =>
        vendor == "AuthenticAMD" && avx512 && string.IsNullOrEmpty(onednn) && string.IsNullOrEmpty(dnnl);

    /// <summary>The x86 vendor string of CPUID leaf 0 ("AuthenticAMD", "GenuineIntel"), or null on another architecture.</summary>
    internal static string? Vendor()
    {
        if (!X86Base.IsSupported) return null;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var bytes = new byte[12];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 4), ebx);
        BitConverter.TryWriteBytes(bytes.AsSpan(4, 4), edx);
        BitConverter.TryWriteBytes(bytes.AsSpan(8, 4), ecx);
        return Encoding.ASCII.GetString(bytes);
    }

    /// <summary>The process environment as native code reads it (libc getenv), for tests.</summary>
    internal static string? NativeValue(string name) =>
        OperatingSystem.IsLinux() ? Marshal.PtrToStringUTF8(GetEnv(name)) : Environment.GetEnvironmentVariable(name);

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);

    [DllImport("libc", EntryPoint = "getenv")]
    private static extern IntPtr GetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name);
}
