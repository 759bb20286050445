using NaturalGradient.Training.Data;

namespace NaturalGradient.Tests.Data;

public class SplitAndLabelTests
{
    [Fact]
    public void Permutation_IsAPermutation_AndPinnedForSeed0()
    {
        var p = TrainTestSplit.Permutation(1000, 42);
        Assert.Equal(Enumerable.Range(0, 1000), p.Order());
        Assert.Equal(TrainTestSplit.Permutation(1000, 42), p);
        Assert.NotEqual(TrainTestSplit.Permutation(1000, 43), p);
        // Pinned so that a change of generator (which would change every published split) fails loudly.
        Assert.Equal(PinnedSeed0, TrainTestSplit.Permutation(8, 0));
    }

    private static readonly int[] PinnedSeed0 = { 2, 5, 0, 3, 4, 6, 1, 7 }; // SplitMix64 + Fisher–Yates, checked against an independent Python implementation

    [Theory]
    [InlineData(10, 0.2, 8, 2)]
    [InlineData(10, 0.0, 10, 0)]
    [InlineData(3, 0.01, 2, 1)]
    [InlineData(1461, 0.2, 1169, 292)]
    public void Split_Sizes(int m, double fraction, int train, int test)
    {
        var s = TrainTestSplit.Create(m, fraction, seed: 0);
        Assert.Equal(train, s.TrainRows.Count);
        Assert.Equal(test, s.TestRows.Count);
        Assert.Empty(s.TrainRows.Intersect(s.TestRows));
    }

    [Fact]
    public void Split_RejectsBadFractions()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainTestSplit.Create(10, 1.0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => TrainTestSplit.Create(10, -0.1, 0));
    }

    [Fact]
    public void TextLabels_SortOrdinally()
    {
        var c = ClassLabels.FromLabels(new[] { "sun", "rain", "Fog", "rain" });
        Assert.Equal(new[] { "Fog", "rain", "sun" }, c.Names);
        Assert.Equal(1, c.IndexOf("rain"));
    }

    [Fact]
    public void NumericLabels_SortNumerically_AndMergeEqualValues()
    {
        var c = ClassLabels.FromLabels(new[] { "10", "9", "1.0", "1", "-2" });
        Assert.Equal(new[] { "-2", "1", "9", "10" }, c.Names);
        Assert.Equal(1, c.IndexOf("1.0"));
        Assert.Equal(3, c.IndexOf("10"));
    }
}
