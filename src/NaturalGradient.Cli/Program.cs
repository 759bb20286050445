using NaturalGradient.Cli.Rendering;
using NaturalGradient.Training.Data;
using NaturalGradient.Training;

namespace NaturalGradient.Cli;

/// <summary>Entry point of the <c>natgrad</c> command-line tool.</summary>
public static class Program
{
    /// <summary>
    /// Runs natgrad on the process's console; Ctrl+C (SIGINT) or SIGTERM stops training between steps, after which a
    /// checkpoint is written and natgrad exits with <see cref="ExitCodes.Interrupted"/>. A second Ctrl+C, a second or more
    /// after the first, ends the process (<see cref="Commands.InterruptPolicy"/>). Sets glibc's allocator to keep freed
    /// memory first (<see cref="NaturalGradient.Numerics.NativeAllocator.RetainFreedMemory"/>).
    /// </summary>
    public static int Main(string[] args)
    {
        // Before the first tensor: glibc keeps freed memory for the next step's tensors (no process-wide change when the
        // environment sets the thresholds itself; docs/PERFORMANCE.md, "The allocator's thresholds").
        NaturalGradient.Numerics.NativeAllocator.RetainFreedMemory();
        // Not disposed: a Ctrl+C can arrive after Run returns, while the process ends, and the handler must still find it.
        var cancel = new CancellationTokenSource();
        var interrupts = new Commands.InterruptPolicy();
        Console.CancelKeyPress += (_, e) =>
        {
            if (!interrupts.KeepRunning(System.Diagnostics.Stopwatch.GetTimestamp())) return; // a later Ctrl+C ends the process
            e.Cancel = true;
            cancel.Cancel();
        };
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, e =>
        {
            e.Cancel = true; // keep the process alive until training has stopped and written its checkpoint
            cancel.Cancel();
        });
        return Run(args, Console.Out, Console.Error, cancel.Token);
    }

    /// <summary>Runs natgrad in-process (tests, embedding) with the given writers.</summary>
    /// <param name="args">Command-line arguments, e.g. <c>["train", "--data", "weather"]</c>.</param>
    /// <param name="stdout">Progress, summary and help. Live progress is used only when this is an interactive console.</param>
    /// <param name="stderr">One-line error messages.</param>
    /// <returns>An exit code of <see cref="ExitCodes"/>.</returns>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, stdout, stderr, CancellationToken.None);

    private static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken cancellation) =>
        new NatgradApp(new CliContext(stdout, stderr, ConsoleSetup.IsInteractive(stdout), DatasetCatalog.Load,
            OptimizerCatalog.Default, cancellation)).Run(args);

    /// <summary>Runs natgrad with a custom context (tests: in-memory data).</summary>
    internal static int Run(string[] args, CliContext context) => new NatgradApp(context).Run(args);
}
