using System.Globalization;
using System.Reflection;
using TorchSharp;

namespace NaturalGradient.Tests.Docs;

/// <summary>
/// Runs a sample program (an assembly referenced by this project) in-process with the invariant culture, returns what
/// it printed (line ends normalised to \n) and asserts a zero exit code. Samples set process-wide torch state (default
/// dtype, threads); it is restored afterwards.
/// </summary>
internal static class SampleRunner
{
    public static string Run(string assembly)
    {
        var dtype = torch.get_default_dtype();
        int threads = torch.get_num_threads();
        var culture = CultureInfo.CurrentCulture;
        var console = Console.Out;
        using var output = new StringWriter();
        try
        {
            CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
            Console.SetOut(output);
            var entry = Assembly.Load(assembly).EntryPoint!;
            var result = entry.Invoke(null, entry.GetParameters().Length == 0 ? null : new object[] { Array.Empty<string>() });
            if (result is int exit) Assert.Equal(0, exit);
        }
        finally
        {
            Console.SetOut(console);
            CultureInfo.CurrentCulture = culture;
            torch.set_default_dtype(dtype);
            torch.set_num_threads(threads);
        }
        return output.ToString().Replace("\r\n", "\n");
    }
}
