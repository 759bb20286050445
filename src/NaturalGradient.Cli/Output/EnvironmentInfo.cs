using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;

namespace NaturalGradient.Cli.Output;

/// <summary>Versions and machine facts that make a run's numbers interpretable.</summary>
internal static class EnvironmentInfo
{
    public static IReadOnlyDictionary<string, object?> Collect() => new SortedDictionary<string, object?>(StringComparer.Ordinal)
    {
        ["natgrad"] = VersionOf(typeof(EnvironmentInfo).Assembly),
        ["natural_gradient"] = VersionOf(typeof(Training.Trainer).Assembly),
        ["torchsharp"] = VersionOf(typeof(torch).Assembly),
        ["libtorch"] = torch.__version__,
        ["torch_threads"] = torch.get_num_threads(),
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["os"] = RuntimeInformation.OSDescription,
        ["architecture"] = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(),
        ["processor_count"] = Environment.ProcessorCount,
        ["cpu_model"] = CpuModel(),
        // True when glibc keeps freed memory (natgrad's start-up setting; false when the environment set the thresholds itself).
        ["allocator_retains_freed_memory"] = NaturalGradient.Numerics.NativeAllocator.Applied,
    };

    /// <summary>The processor's name from /proc/cpuinfo ("model name"), or null where there is none (non-Linux).</summary>
    public static string? CpuModel()
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return null;
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            var colon = line?.IndexOf(':') ?? -1;
            return colon < 0 ? null : line![(colon + 1)..].Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string VersionOf(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? assembly.GetName().Version?.ToString() ?? "unknown";
}
