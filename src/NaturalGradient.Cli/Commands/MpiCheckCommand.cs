using System.CommandLine;
using NaturalGradient.Distributed;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>mpirun -np N natgrad mpi-check</c>: checks that MPI works for natgrad on this machine or cluster — every rank
/// runs <see cref="CollectiveCheck"/> and prints one line; exit code 0 when every check passed on this rank.
/// </summary>
internal static class MpiCheckCommand
{
    public static Command Create(CliContext ctx)
    {
        var command = new Command("mpi-check", "Check MPI for data-parallel training: run under mpirun -np N; every rank tests allreduce, broadcast, allgather and barrier");
        command.SetAction(_ => Execute(ctx));
        return command;
    }

    private static int Execute(CliContext ctx)
    {
        ICommunicator c;
        try
        {
            c = Launch.FromEnvironment();
        }
        catch (Exception e) when (e is MpiNotAvailableException or MpiException or FormatException)
        {
            throw new UsageException(e.Message);
        }
        var failures = CollectiveCheck.Run(c);
        foreach (var f in failures) ctx.Error.WriteLine($"natgrad: error: {f}");
        ctx.Out.WriteLine(failures.Count == 0
            ? $"rank {c.Rank} of {c.Size}: allreduce, broadcast, allgather and barrier correct"
            : $"rank {c.Rank} of {c.Size}: {failures.Count} check(s) failed");
        c.Dispose();
        return failures.Count == 0 ? ExitCodes.Success : ExitCodes.Internal;
    }
}
