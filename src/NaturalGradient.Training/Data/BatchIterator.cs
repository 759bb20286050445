using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Data;

/// <summary>Mini-batches of a data set in a seeded random order, reshuffled every epoch.</summary>
public sealed class BatchIterator
{
    private readonly Tensor _x, _y;
    private readonly Generator _generator;

    /// <param name="x">Features, first dimension = examples.</param>
    /// <param name="y">Targets, first dimension = examples.</param>
    /// <param name="batchSize">Examples per batch (≥ 1); the last batch of an epoch may be smaller unless <paramref name="dropLast"/>.</param>
    /// <param name="seed">Seed of the shuffling.</param>
    /// <param name="dropLast">Skip a final partial batch.</param>
    public BatchIterator(Tensor x, Tensor y, int batchSize, long seed, bool dropLast = false)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be ≥ 1");
        if (x.shape[0] != y.shape[0]) throw new ArgumentException($"x has {x.shape[0]} examples but y has {y.shape[0]}");
        _x = x;
        _y = y;
        BatchSize = batchSize;
        DropLast = dropLast;
        _generator = new Generator((ulong)seed);
    }

    public int BatchSize { get; }
    public bool DropLast { get; }
    public long Count => _x.shape[0];

    /// <summary>Batches per epoch.</summary>
    public long BatchesPerEpoch => DropLast ? Count / BatchSize : (Count + BatchSize - 1) / BatchSize;

    /// <summary>One epoch's batches in a fresh random order. Batch tensors belong to the caller's dispose scope.</summary>
    public IEnumerable<(Tensor X, Tensor Y)> Epoch()
    {
        Tensor order;
        using (var _ = NewDisposeScope())
            order = randperm(Count, generator: _generator).MoveToOuterDisposeScope();
        try
        {
            for (long start = 0; start < Count; start += BatchSize)
            {
                long size = Math.Min(BatchSize, Count - start);
                if (size < BatchSize && DropLast) yield break;
                Tensor bx, by;
                using (var idx = order.narrow(0, start, size)) // a view handle per batch: free it, or one tensor leaks per step
                {
                    bx = _x.index_select(0, idx);
                    by = _y.index_select(0, idx);
                }
                yield return (bx, by);
            }
        }
        finally
        {
            order.Dispose();
        }
    }
}
