namespace NaturalGradient.Training.Data;

/// <summary>
/// Which rows go to training and which to testing: a seeded random permutation (SplitMix64 + Fisher–Yates,
/// so the split is the same on every platform and .NET version), the first ⌊m·f⌉ rows of which are the test set.
/// </summary>
public sealed class TrainTestSplit
{
    private TrainTestSplit(int[] train, int[] test)
    {
        TrainRows = train;
        TestRows = test;
    }

    /// <summary>Row indices of the training split, in shuffled order.</summary>
    public IReadOnlyList<int> TrainRows { get; }

    /// <summary>Row indices of the test split, in shuffled order.</summary>
    public IReadOnlyList<int> TestRows { get; }

    /// <summary>Splits <paramref name="rowCount"/> rows.</summary>
    /// <param name="rowCount">Rows in the data set (≥ 2 when <paramref name="testFraction"/> &gt; 0, else ≥ 1).</param>
    /// <param name="testFraction">Fraction held out, in [0, 1); the test set gets round(m·f) rows, at least 1 if f &gt; 0.</param>
    /// <param name="seed">Seed of the permutation.</param>
    /// <param name="maxTrainRows">Keep only the first this many training rows of the permutation; null = all.</param>
    public static TrainTestSplit Create(int rowCount, double testFraction, long seed, int? maxTrainRows = null)
    {
        if (!(testFraction >= 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "test fraction must be in [0, 1)");
        if (maxTrainRows is < 1)
            throw new ArgumentOutOfRangeException(nameof(maxTrainRows), maxTrainRows, "max training examples must be ≥ 1");
        int testCount = (int)Math.Round(rowCount * testFraction, MidpointRounding.AwayFromZero);
        if (testFraction > 0 && testCount == 0) testCount = 1;
        if (rowCount - testCount < 1)
            throw new ArgumentException($"{rowCount} row{(rowCount == 1 ? "" : "s")} and test fraction {testFraction} leave no training rows");
        var order = Permutation(rowCount, seed);
        var test = order[..testCount];
        var train = order[testCount..];
        if (maxTrainRows is { } max && max < train.Length) train = train[..max];
        return new TrainTestSplit(train, test);
    }

    /// <summary>A random permutation of 0…n−1 determined by <paramref name="seed"/>.</summary>
    public static int[] Permutation(int n, long seed)
    {
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        ulong state = unchecked((ulong)seed);
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(NextUInt64(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>SplitMix64 (Steele, Lea, Flood 2014).</summary>
    private static ulong NextUInt64(ref ulong state)
    {
        unchecked
        {
            ulong z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
