using NaturalGradient.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Data;

public class BatchIteratorTests
{
    private static List<long[]> EpochOrder(BatchIterator it)
    {
        using var scope = NewDisposeScope();
        var batches = new List<long[]>();
        foreach (var (x, y) in it.Epoch())
        {
            var ids = y.data<long>().ToArray();
            Assert.Equal(ids.Select(i => (double)i), x[TensorIndex.Colon, 0].data<double>().ToArray());
            batches.Add(ids);
        }
        return batches;
    }

    private static (Tensor X, Tensor Y) Examples(int m) =>
        (arange(m, dtype: ScalarType.Float64).unsqueeze(1).repeat(1, 2), arange(m, dtype: ScalarType.Int64));

    [Fact]
    public void Epoch_CoversEveryExampleOnce_InBatchesOfTheRequestedSize()
    {
        var (x, y) = Examples(10);
        using var _x = x; using var _y = y;
        var it = new BatchIterator(x, y, batchSize: 3, seed: 5);
        Assert.Equal(4, it.BatchesPerEpoch);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var batches = EpochOrder(it);
            Assert.Equal(new[] { 3, 3, 3, 1 }, batches.Select(b => b.Length));
            Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i), batches.SelectMany(b => b).Order());
        }
    }

    [Fact]
    public void SameSeed_GivesSameOrder_AndEpochsDiffer()
    {
        var (x, y) = Examples(40);
        using var _x = x; using var _y = y;
        var a = new BatchIterator(x, y, 8, seed: 11);
        var b = new BatchIterator(x, y, 8, seed: 11);
        var c = new BatchIterator(x, y, 8, seed: 12);
        var a1 = EpochOrder(a).SelectMany(v => v).ToArray();
        var a2 = EpochOrder(a).SelectMany(v => v).ToArray();
        var b1 = EpochOrder(b).SelectMany(v => v).ToArray();
        var b2 = EpochOrder(b).SelectMany(v => v).ToArray();
        var c1 = EpochOrder(c).SelectMany(v => v).ToArray();
        Assert.Equal(a1, b1);
        Assert.Equal(a2, b2);
        Assert.NotEqual(a1, a2);
        Assert.NotEqual(a1, c1);
    }

    [Fact]
    public void DropLast_SkipsThePartialBatch()
    {
        var (x, y) = Examples(10);
        using var _x = x; using var _y = y;
        var it = new BatchIterator(x, y, 4, seed: 0, dropLast: true);
        Assert.Equal(2, it.BatchesPerEpoch);
        var batches = EpochOrder(it);
        Assert.Equal(new[] { 4, 4 }, batches.Select(b => b.Length));
        Assert.Equal(8, batches.SelectMany(v => v).Distinct().Count());
    }
}
