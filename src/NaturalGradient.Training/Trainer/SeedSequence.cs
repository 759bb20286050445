namespace NaturalGradient.Training;

/// <summary>Independent seeds derived from one run seed (SplitMix64), one per random stream.</summary>
public static class SeedSequence
{
    /// <summary>Stream of the batch order.</summary>
    public const int BatchOrder = 1;

    /// <summary>Stream of the optimiser's generator.</summary>
    public const int Optimizer = 2;

    /// <summary>Stream of the metric batch sampler.</summary>
    public const int MetricBatches = 3;

    /// <summary>The seed of stream <paramref name="stream"/> of run seed <paramref name="seed"/>.</summary>
    public static ulong Derive(long seed, int stream)
    {
        ulong z = unchecked((ulong)seed + (ulong)stream * 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
