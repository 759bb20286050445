using Spectre.Console;

namespace NaturalGradient.Cli.Rendering;

/// <summary>Decides between live (interactive terminal) and plain (redirected, CI) output and creates the Spectre console.</summary>
internal static class ConsoleSetup
{
    /// <summary>
    /// True when <paramref name="stdout"/> is the process's console, it is not redirected, and neither CI=true nor
    /// TERM=dumb is set.
    /// </summary>
    public static bool IsInteractive(TextWriter stdout) =>
        ReferenceEquals(stdout, Console.Out)
        && !Console.IsOutputRedirected
        && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
        && !string.Equals(Environment.GetEnvironmentVariable("TERM"), "dumb", StringComparison.Ordinal);

    /// <summary>A Spectre console writing to <paramref name="stdout"/>: colours and live updates only when interactive.</summary>
    public static IAnsiConsole Create(TextWriter stdout, bool interactive) => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(stdout),
        Ansi = interactive ? AnsiSupport.Detect : AnsiSupport.No,
        ColorSystem = interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        Interactive = interactive ? InteractionSupport.Yes : InteractionSupport.No,
    });
}
