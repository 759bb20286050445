using NaturalGradient.Optim;
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

    /// <summary>The shuffling generator's state (the caller owns the tensor): restore it with <see cref="SetState"/>
    /// to replay the same epoch orders, e.g. when a run resumes from a checkpoint.</summary>
    public Tensor GetState() => _generator.get_state();

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    /// <exception cref="InvalidDataException">The tensor is not a generator state (element type or shape).</exception>
    public void SetState(Tensor state) => GeneratorState.Restore(_generator, state, "the batch order's state");

    /// <summary>One epoch's batches in a fresh random order. Batch tensors belong to the caller's dispose scope.</summary>
    /// <param name="skip">Batches of this epoch's order to pass over without forming them (resuming mid-epoch), ≥ 0.</param>
    public IEnumerable<(Tensor X, Tensor Y)> Epoch(long skip = 0)
    {
        if (skip < 0) throw new ArgumentOutOfRangeException(nameof(skip), skip, "skip must be ≥ 0");
        Tensor order;
        using (var _ = NewDisposeScope())
            order = randperm(Count, generator: _generator).MoveToOuterDisposeScope();
        try
        {
            for (long start = skip * BatchSize; start < Count; start += BatchSize)
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
