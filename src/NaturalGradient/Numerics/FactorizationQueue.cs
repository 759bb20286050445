using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Independent dense factorisations (the Cholesky inverses and eigendecompositions of Kronecker factors) gathered from
/// every block of a step and run side by side. LAPACK's potrf/potri and syevd at the widths of layer factors
/// (10–1000) gain little from a second thread, and unevenly: on the 2-core machines of docs/PERFORMANCE.md the six
/// factors of MLP 784-512-512-10 took 18.6–29 ms of Cholesky inverses and 64–85 ms of eigh one after another with 2
/// torch threads, and 16–17 ms and 58–60 ms side by side (<c>perf --part kernels</c>; section "Factorisations side by
/// side").
/// </summary>
/// <remarks>
/// <para><see cref="Run()"/> takes the calling thread's torch thread count n. With 2 ≤ n ≤ the number of parts (so that
/// every thread has a part to take), CPU matrices and a total cost of at least <see cref="MinimumSideBySideCost"/>, n
/// helper threads of the library — started on first need and kept, whose torch thread count is 1 — each take the largest
/// part not yet taken, while the caller waits. Otherwise the parts run in order on the caller. A part is then always
/// computed single-threaded when n ≥ 2, so its result does not depend on which thread took it. The caller's thread count
/// is never changed: <c>torch.set_num_threads</c> also sets the count threads start with on their first torch call, so
/// that a caller computing parts at one thread would hand one thread to every thread started meanwhile. A helper's start
/// sets that count to 1, and the caller sets it back to n at once (once per helper, for the life of the process).</para>
/// <para>A part's computation must only read tensors that nothing writes while the queue runs, and return fresh
/// tensors. After all parts ran, each group's completion gets its parts' results, in the order the groups were added,
/// on the calling thread and in its dispose scope, as if computed there; a group one of whose parts threw gets no
/// completion (its other results are disposed), and <see cref="Run()"/> rethrows the first such exception after the other
/// groups completed.</para>
/// </remarks>
internal sealed class FactorizationQueue
{
    /// <summary>
    /// False runs every queue in order on the caller, whatever the thread count (the benchmark's "-serial" step
    /// configurations, which measure what running side by side saves). Process-wide; true by default.
    /// </summary>
    internal static bool SideBySide { get; set; } = true;

    /// <summary>
    /// The least total cost (Σ d³ over the parts) run side by side: 2 · 256³, about a millisecond of LAPACK work on one
    /// thread. Smaller factorisations (the figure-5 nets' 20-wide factors) take microseconds, less than handing work to
    /// another thread and switching the caller's thread count.
    /// </summary>
    internal const double MinimumSideBySideCost = 2.0 * 256 * 256 * 256;

    private readonly List<Part> _parts = new();
    private readonly List<Group> _groups = new();

    /// <summary>How many parts the queue holds.</summary>
    public int Count => _parts.Count;

    /// <summary>
    /// Adds a group of factorisations: one part per matrix (its cost, d³ for a d × d matrix and d for a vector, orders
    /// the parts, largest first), and the completion that takes their results (one array per part, in the order given).
    /// </summary>
    public void Add(IReadOnlyList<(Tensor Matrix, Func<Tensor[]> Compute)> parts, Action<Tensor[][]> complete)
    {
        int first = _parts.Count;
        foreach (var (matrix, compute) in parts)
        {
            // A vector (a diagonal factor) is inverted element-wise: its cost is its length.
            double d = matrix.dim() == 0 ? 1 : matrix.size(-1), cost = matrix.dim() < 2 ? d : d * d * d;
            _parts.Add(new Part(compute, cost, matrix.device_type == DeviceType.CPU));
        }
        _groups.Add(new Group(first, parts.Count, complete));
    }

    /// <summary>
    /// Fills a new queue with <paramref name="fill"/> and runs it. When <paramref name="fill"/> throws, what it queued
    /// before is still run and completed, and its exception is the one thrown (a failure of that run is dropped).
    /// </summary>
    public static void Run(Action<FactorizationQueue> fill)
    {
        var queue = new FactorizationQueue();
        try
        {
            fill(queue);
        }
        catch
        {
            try { queue.Run(); }
            catch (Exception) { /* the first failure is the one reported */ }
            throw;
        }
        queue.Run();
    }

    /// <summary>Computes every part and completes every group (see the remarks); the queue is empty afterwards.</summary>
    public void Run()
    {
        if (_parts.Count == 0) { _groups.Clear(); return; }
        var parts = _parts.ToArray();
        var groups = _groups.ToArray();
        _parts.Clear();
        _groups.Clear();
        int threads = torch.get_num_threads();
        if (SideBySide && threads >= 2 && parts.Length >= threads && parts.Sum(p => p.Cost) >= MinimumSideBySideCost && parts.All(p => p.OnCpu))
            RunSideBySide(parts, threads);
        else foreach (var part in parts) part.Compute();
        Complete(parts, groups);
    }

    private static void RunSideBySide(Part[] parts, int threads)
    {
        Helpers.Ensure(threads);
        // Largest first. The helpers keep the last work they took until they take more: the parts leave this array
        // once computed, so that what they hold (factors, blocks) is not kept alive by an idle helper.
        var pending = parts.OrderByDescending(p => p.Cost).ToArray<Part?>();
        int next = -1;
        // Not disposed: the helper whose Signal ends the count may still be inside Signal when Wait returns.
        var done = new CountdownEvent(parts.Length);
        void Drain()
        {
            for (int k = Interlocked.Increment(ref next); k < pending.Length; k = Interlocked.Increment(ref next))
            {
                pending[k]!.Compute();
                done.Signal();
            }
        }
        for (int w = 0; w < threads; w++) Helpers.Post(Drain);
        // A helper still busy with another queue's work (another thread's optimiser) comes to this one later and finds
        // what the others left; one that comes after every part was taken finds none.
        done.Wait();
        Array.Clear(pending);
    }

    private static void Complete(Part[] parts, Group[] groups)
    {
        Exception? failure = null;
        foreach (var group in groups)
        {
            var members = parts.AsSpan(group.First, group.Count).ToArray();
            if (members.FirstOrDefault(p => p.Error is not null) is { } failed)
            {
                failure ??= failed.Error;
                foreach (var p in members) p.DisposeResults();
                continue;
            }
            try
            {
                group.Complete(members.Select(p => p.TakeResults()).ToArray());
            }
            catch (Exception e)
            {
                failure ??= e;
            }
        }
        if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
    }

    private sealed class Part(Func<Tensor[]> compute, double cost, bool onCpu)
    {
        public double Cost { get; } = cost;
        public bool OnCpu { get; } = onCpu;
        public Tensor[]? Results { get; private set; }
        public Exception? Error { get; private set; }

        /// <summary>Runs the computation in a dispose scope of its own; the results leave it owned by no scope.</summary>
        public void Compute()
        {
            try
            {
                using var scope = NewDisposeScope();
                var results = compute();
                foreach (var r in results) r.DetachFromDisposeScope();
                Results = results;
            }
            catch (Exception e)
            {
                Error = e;
            }
        }

        /// <summary>The results as fresh aliases in the calling thread's dispose scope (the unowned handles are released).</summary>
        public Tensor[] TakeResults()
        {
            var taken = Results!.Select(r => r.alias()).ToArray();
            DisposeResults();
            return taken;
        }

        public void DisposeResults()
        {
            if (Results is null) return;
            foreach (var r in Results) r.Dispose();
            Results = null;
        }
    }

    private sealed record Group(int First, int Count, Action<Tensor[][]> Complete);

    /// <summary>The library's helper threads: background threads whose torch thread count is 1, taking posted work in order.</summary>
    private static class Helpers
    {
        private static readonly BlockingCollection<Action> Work = new();
        private static readonly object Gate = new();
        private static int _started;

        /// <summary>
        /// Starts helpers until <paramref name="threads"/> run (the caller's torch thread count); the count new threads
        /// start with is then set back to it.
        /// </summary>
        public static void Ensure(int threads)
        {
            if (Volatile.Read(ref _started) >= threads) return;
            lock (Gate)
            {
                if (_started >= threads) return;
                while (_started < threads)
                {
                    using var ready = new ManualResetEventSlim();
                    var thread = new Thread(() => Loop(ready)) { IsBackground = true, Name = "NaturalGradient factorisations" };
                    thread.Start();
                    ready.Wait();
                    Volatile.Write(ref _started, _started + 1);
                }
                // A helper's set_num_threads(1) also set the count new threads start with: back to the caller's.
                torch.set_num_threads(threads);
            }
        }

        public static void Post(Action work) => Work.Add(work);

        private static void Loop(ManualResetEventSlim ready)
        {
            torch.get_num_threads();   // a thread's first torch call takes the starting count; then its own is set
            torch.set_num_threads(1);
            ready.Set();
            foreach (var work in Work.GetConsumingEnumerable())
            {
                try { work(); }
                catch (Exception) { /* a part's failure is recorded by the part itself; keep the helper */ }
            }
        }
    }
}
