namespace NaturalGradient.Training.Experiments.OrderVariance;

/// <summary>
/// The online training streams of the Erhan et al. (2010) protocol that seed 001 §6 repeats (figure 3): a fixed
/// stream of training examples whose first half is cut into segments; for segment k and run r the stream is the
/// same except that segment k is replaced by a fresh draw from a pool of examples the stream never uses.
/// </summary>
public sealed class StreamPlan
{
    private readonly int[] _stream, _pool;

    /// <param name="trainCount">Examples available.</param>
    /// <param name="streamLength">Length of the stream (≤ trainCount; the rest is the replacement pool).</param>
    /// <param name="segments">Segments the first half is cut into.</param>
    /// <param name="seed">Seed of the stream, the pool and every replacement draw.</param>
    public StreamPlan(int trainCount, int streamLength, int segments, long seed)
    {
        if (segments < 1) throw new ArgumentOutOfRangeException(nameof(segments), segments, "segments must be ≥ 1");
        if (streamLength < 2 * segments) throw new ArgumentOutOfRangeException(nameof(streamLength), streamLength, $"the stream must hold at least 2 × segments ({2 * segments}) examples");
        SegmentLength = streamLength / 2 / segments;
        if (trainCount - streamLength < SegmentLength)
            throw new ArgumentOutOfRangeException(nameof(streamLength), streamLength,
                $"the stream must leave at least one segment ({SegmentLength}) of the {trainCount} examples for replacements");
        var order = Shuffle(Enumerable.Range(0, trainCount).ToArray(), seed);
        _stream = order[..streamLength];
        _pool = order[streamLength..];
        Segments = segments;
        Seed = seed;
    }

    public int Segments { get; }
    public int SegmentLength { get; }
    public long Seed { get; }
    public IReadOnlyList<int> BaseStream => _stream;
    public IReadOnlyList<int> Pool => _pool;

    /// <summary>Stream positions of segment k (0-based): [k·L, (k+1)·L).</summary>
    public Range SegmentRange(int k) => (k * SegmentLength)..((k + 1) * SegmentLength);

    /// <summary>The stream of run <paramref name="run"/> with segment <paramref name="segment"/> resampled from the pool.</summary>
    public int[] Stream(int segment, int run)
    {
        if (segment < 0 || segment >= Segments) throw new ArgumentOutOfRangeException(nameof(segment), segment, $"segment must be in [0, {Segments})");
        var stream = (int[])_stream.Clone();
        var draw = Shuffle((int[])_pool.Clone(), unchecked(Seed * 1_000_003 + segment * 10_007 + run + 1));
        var (start, length) = SegmentRange(segment).GetOffsetAndLength(stream.Length);
        Array.Copy(draw, 0, stream, start, length);
        return stream;
    }

    private static int[] Shuffle(int[] items, long seed)
    {
        var random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
        return items;
    }
}
