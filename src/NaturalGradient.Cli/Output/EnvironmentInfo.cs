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
    };

    private static string VersionOf(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? assembly.GetName().Version?.ToString() ?? "unknown";
}
