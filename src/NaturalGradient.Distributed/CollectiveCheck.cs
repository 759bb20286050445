using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Distributed;

/// <summary>
/// Checks a job's collectives against answers every rank can compute alone: allreduce (sum and average) of
/// float32, float64 and int64 tensors, broadcast from the last rank, allgather of unequal lengths, barrier.
/// </summary>
public static class CollectiveCheck
{
    /// <summary>Runs every check on every rank (all ranks must call it).</summary>
    /// <returns>One line per failed check (empty when all pass).</returns>
    public static IReadOnlyList<string> Run(ICommunicator c)
    {
        var failures = new List<string>();
        int n = c.Size, r = c.Rank;
        void Expect(string what, Tensor found, Tensor expected)
        {
            if (!found.shape.SequenceEqual(expected.shape) || !found.to_type(ScalarType.Float64).allclose(expected.to_type(ScalarType.Float64), rtol: 1e-6, atol: 1e-6))
                failures.Add($"rank {r}: {what}: got [{string.Join(", ", found.to_type(ScalarType.Float64).data<double>().Take(6))}…] ({string.Join("×", found.shape)}), " +
                             $"expected [{string.Join(", ", expected.to_type(ScalarType.Float64).data<double>().Take(6))}…] ({string.Join("×", expected.shape)})");
        }
        using var scope = NewDisposeScope();
        // rank r holds (r + 1)·(1, 2, …, k): the sum is N(N + 1)/2 · (1, …, k).
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64, ScalarType.Int64 })
        {
            var ramp = arange(1, 1001, dtype: ScalarType.Float64).reshape(10, 100);
            var t = (ramp * (r + 1)).to_type(dtype);
            c.AllReduce(t, ReduceOperation.Sum);
            Expect($"AllReduce sum {dtype}", t, ramp * (n * (n + 1) / 2.0));
            if (dtype != ScalarType.Int64)
            {
                var a = (ramp * (r + 1)).to_type(dtype);
                c.AllReduce(a, ReduceOperation.Average);
                Expect($"AllReduce average {dtype}", a, ramp * ((n + 1) / 2.0));
            }
        }
        var b = full(new long[] { 7, 3 }, (double)r, ScalarType.Float64);
        c.Broadcast(b, root: n - 1);
        Expect("Broadcast from the last rank", b, full(new long[] { 7, 3 }, (double)(n - 1), ScalarType.Float64));
        // rank q contributes q + 1 rows, each filled with q.
        var mine = full(new long[] { r + 1, 4 }, (double)r, ScalarType.Float32);
        var gathered = c.AllGather(mine);
        var expected = cat(Enumerable.Range(0, n).Select(q => full(new long[] { q + 1, 4 }, (double)q, ScalarType.Float32)).ToList());
        Expect("AllGather of unequal lengths", gathered, expected);
        c.Barrier();
        return failures;
    }
}
