using NaturalGradient.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training;

/// <summary>
/// Random batches of the training set drawn independently of the gradient batches, for curvature statistics
/// computed on another batch or on "unlabeled" inputs (seed 000 §4 "other batch").
/// </summary>
public sealed class MetricBatchSampler : IDisposable
{
    private readonly Tensor _x, _y;
    private readonly Generator _generator;

    /// <param name="x">Training inputs (batch first). Not owned.</param>
    /// <param name="y">Training targets (batch first). Not owned.</param>
    /// <param name="batchSize">Default examples per draw, ≥ 1.</param>
    /// <param name="seed">Seed of the draws.</param>
    public MetricBatchSampler(Tensor x, Tensor y, int batchSize, ulong seed)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"batchSize must be ≥ 1, got {batchSize}");
        if (x.shape[0] != y.shape[0]) throw new ArgumentException($"x has {x.shape[0]} examples but y has {y.shape[0]}", nameof(y));
        _x = x;
        _y = y;
        BatchSize = batchSize;
        _generator = new Generator(seed);
    }

    /// <summary>Default examples per draw.</summary>
    public int BatchSize { get; }

    /// <summary>
    /// <paramref name="count"/> examples (default <see cref="BatchSize"/>) drawn uniformly with replacement. The
    /// tensors belong to the caller's dispose scope.
    /// </summary>
    public (Tensor X, Tensor Y) Next(int? count = null)
    {
        long m = count ?? BatchSize;
        if (m < 1) throw new ArgumentOutOfRangeException(nameof(count), count, $"count must be ≥ 1, got {count}");
        var idx = randint(0, _x.shape[0], new[] { m }, dtype: ScalarType.Int64, generator: _generator);
        return (_x.index_select(0, idx), _y.index_select(0, idx));
    }

    /// <summary>The draws' generator state (the caller owns the tensor).</summary>
    public Tensor GetState() => _generator.get_state();

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    /// <exception cref="InvalidDataException">The tensor is not a generator state (element type or shape).</exception>
    public void SetState(Tensor state) => GeneratorState.Restore(_generator, state, "the metric batches' state");

    /// <inheritdoc/>
    public void Dispose() => _generator.Dispose();
}
