using NaturalGradient.Cli;
using NaturalGradient.Training.Data;
using NaturalGradient.Training;

namespace NaturalGradient.Tests.Cli;

/// <summary>Runs natgrad in-process with string writers (plain output) and a data loader chosen by the test.</summary>
public static class CliHarness
{
    public sealed record Outcome(int ExitCode, string Stdout, string Stderr)
    {
        public string[] ErrorLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Runs <paramref name="args"/>; <paramref name="load"/> stands in for DatasetCatalog.Load (default: tiny regression data).</summary>
    public static Outcome Run(string[] args, Func<string, DataOptions, Dataset>? load = null)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var context = new CliContext(stdout, stderr, Interactive: false, load ?? ((_, _) => TinyData.Regression()), OptimizerCatalog.Default);
        int code = Program.Run(args, context);
        return new Outcome(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs the real program entry (real data catalog).</summary>
    public static Outcome RunReal(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return new Outcome(code, stdout.ToString(), stderr.ToString());
    }

    private static readonly string Root = CreateRoot();

    private static string CreateRoot()
    {
        var root = Path.Combine(Path.GetTempPath(), "natgrad-tests", Environment.ProcessId.ToString());
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        return root;
    }

    /// <summary>A fresh empty folder under the temp directory (removed when the test process exits).</summary>
    public static string TempDir()
    {
        var dir = Path.Combine(Root, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
