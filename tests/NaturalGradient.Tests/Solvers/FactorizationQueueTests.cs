using System.Collections.Concurrent;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Solvers.FactorizationFixtures;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="FactorizationQueue"/>: the parts run side by side on helper threads of single-threaded torch when the caller
/// has ≥ 2 threads, their results equal the single-threaded computation bit for bit, completions run in order on the caller in
/// its dispose scope, failures reach the caller after the other groups completed, and every thread count is restored.
/// </summary>
[Collection("Torch")]
public class FactorizationQueueTests
{
    private static Tensor CholeskyInverse(Tensor a) => cholesky_inverse(linalg.cholesky(a));

    [Fact]
    public void SideBySide_ResultsEqualSingleThreadedComputation_BitForBit()
    {
        using var scope = NewDisposeScope();
        int[] sizes = { 300, 200, 201, 100, 3 };   // Σ d³ above FactorizationQueue.MinimumSideBySideCost
        var matrices = sizes.Select((d, i) => Spd(d, 10 + i)).ToArray();
        Tensor[] inverses = null!, values = null!, vectors = null!;
        WithThreads(1, () =>
        {
            inverses = matrices.Select(CholeskyInverse).ToArray();
            var eighs = matrices.Select(m => linalg.eigh(m)).ToArray();
            values = eighs.Select(e => e.Item1).ToArray();
            vectors = eighs.Select(e => e.Item2).ToArray();
        });
        var got = new Tensor[matrices.Length][][];
        WithThreads(2, () =>
        {
            var queue = new FactorizationQueue();
            for (int i = 0; i < matrices.Length; i++)
            {
                var m = matrices[i];
                int k = i;
                queue.Add(new (Tensor, Func<Tensor[]>)[]
                {
                    (m, () => new[] { CholeskyInverse(m) }),
                    (m, () => { var (e, q) = linalg.eigh(m); return new[] { e, q }; }),
                }, results => got[k] = results);
            }
            queue.Run();
            Assert.Equal(0, queue.Count);
        });
        for (int i = 0; i < matrices.Length; i++)
        {
            Assert.True(inverses[i].equal(got[i][0][0]).all().item<bool>(), $"Cholesky inverse of the {sizes[i]} × {sizes[i]} matrix");
            Assert.True(values[i].equal(got[i][1][0]).all().item<bool>(), $"eigenvalues of the {sizes[i]} × {sizes[i]} matrix");
            Assert.True(vectors[i].equal(got[i][1][1]).all().item<bool>(), $"eigenvectors of the {sizes[i]} × {sizes[i]} matrix");
        }
    }

    [Fact]
    public void TwoThreads_PartsRunOnTwoThreadsWithOneTorchThreadEach_CountsRestored()
    {
        var seen = new ConcurrentBag<(int Thread, int TorchThreads)>();
        int caller = Environment.CurrentManagedThreadId;
        WithThreads(2, () =>
        {
            using var scope = NewDisposeScope();
            var queue = new FactorizationQueue();
            for (int i = 0; i < 6; i++)
            {
                var m = Spd(300, i);   // six of them: Σ d³ above FactorizationQueue.MinimumSideBySideCost
                queue.Add(new (Tensor, Func<Tensor[]>)[]
                {
                    (m, () =>
                    {
                        seen.Add((Environment.CurrentManagedThreadId, torch.get_num_threads()));
                        Thread.Sleep(40);   // long enough that the helper thread takes a part
                        return new[] { m.mul(2) };
                    }),
                }, _ => { });
            }
            queue.Run();
            Assert.Equal(2, torch.get_num_threads());
            // A thread's first torch call takes the global count: restored too.
            int fresh = 0;
            var t = new Thread(() => fresh = torch.get_num_threads());
            t.Start();
            t.Join();
            Assert.Equal(2, fresh);
        });
        Assert.Equal(6, seen.Count);
        Assert.All(seen, s => Assert.Equal(1, s.TorchThreads));
        // Two helper threads took them; the caller, whose thread count stays 2, waited.
        Assert.DoesNotContain(seen, s => s.Thread == caller);
        Assert.Equal(2, seen.Select(s => s.Thread).Distinct().Count());
    }

    /// <summary>One thread, or two with parts too small to be worth handing over (Σ d³ below the minimum): in order on the caller.</summary>
    [Theory]
    [InlineData(1, 300)]
    [InlineData(2, 16)]
    public void OneThreadOrSmallParts_PartsRunInOrderOnTheCaller(int threads, int size)
    {
        var order = new List<(int Part, int Thread)>();
        WithThreads(threads, () =>
        {
            using var scope = NewDisposeScope();
            var queue = new FactorizationQueue();
            foreach (int d in new[] { size, size + 2, size + 1 })
            {
                var m = Spd(d, d);
                queue.Add(new (Tensor, Func<Tensor[]>)[] { (m, () => { order.Add((d, Environment.CurrentManagedThreadId)); return new[] { m.clone() }; }) }, _ => { });
            }
            queue.Run();
            Assert.Equal(threads, torch.get_num_threads());
        });
        Assert.Equal(new[] { size, size + 2, size + 1 }, order.Select(o => o.Part));
        Assert.All(order, o => Assert.Equal(Environment.CurrentManagedThreadId, o.Thread));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Completions_InOrderOnTheCaller_ResultsInItsDisposeScope(int threads)
    {
        var completed = new List<(int Group, int Thread)>();
        Tensor? kept = null;
        WithThreads(threads, () =>
        {
            using (NewDisposeScope())
            {
                var queue = new FactorizationQueue();
                for (int g = 0; g < 4; g++)
                {
                    var m = Spd(10 + 150 * g, g);   // later groups are larger, so they are computed first
                    int k = g;
                    queue.Add(new (Tensor, Func<Tensor[]>)[] { (m, () => new[] { CholeskyInverse(m) }) }, results =>
                    {
                        completed.Add((k, Environment.CurrentManagedThreadId));
                        if (k == 0) kept = results[0][0];
                    });
                }
                queue.Run();
                Assert.False(kept!.IsInvalid);
            }
        });
        Assert.Equal(new[] { 0, 1, 2, 3 }, completed.Select(c => c.Group));
        Assert.All(completed, c => Assert.Equal(Environment.CurrentManagedThreadId, c.Thread));
        Assert.True(kept!.IsInvalid);   // disposed with the caller's scope
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void FailingPart_ItsGroupIsNotCompleted_OthersAre_TheFailureIsRethrown(int threads)
    {
        var completed = new List<int>();
        Tensor? orphan = null;
        WithThreads(threads, () =>
        {
            using var scope = NewDisposeScope();
            var queue = new FactorizationQueue();
            var m = Spd(300, 1);   // five parts of 300³: Σ d³ above FactorizationQueue.MinimumSideBySideCost
            queue.Add(new (Tensor, Func<Tensor[]>)[] { (m, () => new[] { m.mul(1) }) }, _ => completed.Add(0));
            queue.Add(new (Tensor, Func<Tensor[]>)[]
            {
                (m, () => { orphan = m.mul(2); return new[] { orphan }; }),
                (m, () => throw new CholeskyFailedException("part 1 of group 1 failed")),
            }, _ => completed.Add(1));
            queue.Add(new (Tensor, Func<Tensor[]>)[] { (m, () => throw new InvalidOperationException("group 2 failed")) }, _ => completed.Add(2));
            queue.Add(new (Tensor, Func<Tensor[]>)[] { (m, () => new[] { m.mul(3) }) }, _ => completed.Add(3));
            var e = Assert.Throws<CholeskyFailedException>(queue.Run);
            Assert.Equal("part 1 of group 1 failed", e.Message);
            Assert.Equal(threads, torch.get_num_threads());
            Assert.Equal(0, queue.Count);
        });
        Assert.Equal(new[] { 0, 3 }, completed);
        Assert.True(orphan!.IsInvalid);   // the failed group's other result was released
    }

    [Fact]
    public void Empty_RunsNothing()
    {
        var queue = new FactorizationQueue();
        queue.Run();
        Assert.Equal(0, queue.Count);
    }
}
