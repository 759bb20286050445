using System.Globalization;

namespace NaturalGradient.Distributed;

/// <summary>Chooses the communicator for this process from how it was launched.</summary>
public static class Launch
{
    /// <summary>Environment variable: seconds one collective may wait for the other ranks (default 120).</summary>
    public const string TimeoutVariable = "NATGRAD_MPI_TIMEOUT";

    /// <summary>True when mpirun (OpenMPI) started this process with more than one rank.</summary>
    public static bool UnderMpirun(out int size)
    {
        size = 1;
        var s = Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") ?? Environment.GetEnvironmentVariable("PMI_SIZE");
        return s is not null && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out size) && size > 1;
    }

    /// <summary>
    /// <see cref="SingleProcess"/> unless the process was launched by mpirun with more than one rank, then an
    /// <see cref="MpiCommunicator"/>. A single-process run never loads MPI.
    /// </summary>
    /// <exception cref="MpiNotAvailableException">Launched by mpirun, but OpenMPI cannot be used (message says how to install it),
    /// or launched by another MPI's launcher.</exception>
    /// <exception cref="FormatException"><see cref="TimeoutVariable"/> is not a positive number of seconds.</exception>
    public static ICommunicator FromEnvironment()
    {
        if (!UnderMpirun(out _)) return SingleProcess.Instance;
        if (Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is null)
            throw new MpiNotAvailableException("this process was started by a launcher other than OpenMPI's mpirun; natgrad binds OpenMPI 4 " +
                "(`sudo apt-get install openmpi-bin libopenmpi-dev`, then `mpirun -np N natgrad train ...`)");
        return new MpiCommunicator(Timeout());
    }

    private static TimeSpan? Timeout()
    {
        var text = Environment.GetEnvironmentVariable(TimeoutVariable);
        if (string.IsNullOrWhiteSpace(text)) return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds > 0) || seconds > 1e6)
            throw new FormatException($"{TimeoutVariable}={text}: expected a number of seconds > 0");
        return TimeSpan.FromSeconds(seconds);
    }
}
