using System.Diagnostics;
using System.Text;

namespace NaturalGradient.Tests.Packaging;

/// <summary>Runs a command to completion (bounded by a timeout) and keeps its exit code and combined output.</summary>
internal sealed record ChildProcess(int ExitCode, string Output)
{
    /// <summary>The dotnet host running these tests (the SDK sets DOTNET_HOST_PATH), else dotnet on PATH.</summary>
    public static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p ? p : "dotnet";

    public static ChildProcess Run(string fileName, string workingDirectory, TimeSpan timeout, params string[] arguments)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        // A child build must not inherit the MSBuild settings of the `dotnet test` that runs this test.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            info.Environment.Remove(key);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";

        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output) return new ChildProcess(-1, $"timed out after {timeout.TotalSeconds:F0} s: {fileName} {string.Join(' ', arguments)}\n{output}");
        }
        process.WaitForExit();
        lock (output) return new ChildProcess(process.ExitCode, output.ToString());
    }

    /// <summary>The last lines of the output, for an assertion message.</summary>
    public string Tail(int lines = 40) => string.Join('\n', Output.Split('\n').TakeLast(lines));
}
