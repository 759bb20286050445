namespace NaturalGradient.Tests.Distributed;

/// <summary>Where mpirun is (OpenMPI), or null.</summary>
internal static class Mpirun
{
    public static string? Path { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(d => System.IO.Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    public const string SkipReason = "mpirun is not installed: apt-get install openmpi-bin libopenmpi-dev to run the multi-process tests";
}

/// <summary>A fact that needs OpenMPI's mpirun; skipped, saying how to install it, when it is absent.</summary>
public sealed class RequiresMpirunFactAttribute : FactAttribute
{
    public RequiresMpirunFactAttribute()
    {
        if (Mpirun.Path is null) Skip = Mpirun.SkipReason;
    }
}

/// <summary>A theory that needs OpenMPI's mpirun; skipped, saying how to install it, when it is absent.</summary>
public sealed class RequiresMpirunTheoryAttribute : TheoryAttribute
{
    public RequiresMpirunTheoryAttribute()
    {
        if (Mpirun.Path is null) Skip = Mpirun.SkipReason;
    }
}
