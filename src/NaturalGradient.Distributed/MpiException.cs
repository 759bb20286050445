namespace NaturalGradient.Distributed;

/// <summary>An MPI call failed; the message names the call and MPI's own description of the error.</summary>
public sealed class MpiException : Exception
{
    public MpiException(string call, int code, string description)
        : base($"{call} failed (MPI error {code}: {description})")
    {
        Call = call;
        Code = code;
    }

    public MpiException(string message) : base(message) { Call = ""; }

    /// <summary>The MPI function, e.g. "MPI_Allreduce".</summary>
    public string Call { get; }

    /// <summary>MPI's error code.</summary>
    public int Code { get; }
}

/// <summary>The process was launched by mpirun but MPI cannot be used here; the message says how to install it.</summary>
public sealed class MpiNotAvailableException(string message) : Exception(message);
