using NaturalGradient.Training.Data;
using NaturalGradient.Training;

namespace NaturalGradient.Cli;

/// <summary>What the commands write to and call: swapped in tests (in-memory data, string writers).</summary>
/// <param name="Out">Standard output (progress, summary, help).</param>
/// <param name="Error">Standard error (the one-line errors).</param>
/// <param name="Interactive">Live progress and colours (a terminal) rather than plain lines.</param>
/// <param name="LoadData">Loads <c>--data</c>; <see cref="DatasetCatalog.Load"/> in the real program.</param>
/// <param name="Catalog">Training methods.</param>
/// <param name="Cancellation">Stops training between steps (Ctrl+C).</param>
internal sealed record CliContext(TextWriter Out, TextWriter Error, bool Interactive,
    Func<string, DataOptions, Dataset> LoadData, OptimizerCatalog Catalog, CancellationToken Cancellation = default);

/// <summary>A bad command line or option value: reported as one line, exit code <see cref="ExitCodes.Usage"/>.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Exit codes of <c>natgrad</c>.</summary>
public static class ExitCodes
{
    /// <summary>The command succeeded.</summary>
    public const int Success = 0;
    /// <summary>Training diverged (a loss became NaN or infinite, or rose beyond 10⁴ × the untrained model's training
    /// loss); the run folder holds what was recorded and the last checkpoint.</summary>
    public const int Diverged = 1;
    /// <summary>Bad command line, option value or data file.</summary>
    public const int Usage = 2;
    /// <summary>An unexpected internal error (set NATGRAD_DEBUG=1 for the stack trace).</summary>
    public const int Internal = 3;
    /// <summary>Interrupted (Ctrl+C or SIGTERM) between steps; the run folder holds a checkpoint to resume from.</summary>
    public const int Interrupted = 130;
}
