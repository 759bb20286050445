using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Damping;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Solvers.FactorizationFixtures;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="FactorizationQueue"/> with other threads about: threads that start while a queue runs keep the process's
/// torch thread count, two optimisers stepping on two threads take the steps each takes alone, and a run resumed from a
/// state dict mid-period takes the uninterrupted steps — with factors large enough to run side by side (float64).
/// </summary>
[Collection("Torch")]
public class FactorizationQueueThreadTests
{
    private static readonly int[] Widths = { 256, 200, 180, 4 };
    private const int Batch = 300;

    /// <summary>
    /// A thread's first torch call takes the count of the last <c>set_num_threads</c>: a thread that starts while the
    /// queue's parts are computed must not take the single thread they run on.
    /// </summary>
    [Fact]
    public void ThreadStartedWhileTheQueueRuns_TakesTheCallersThreadCount()
    {
        int fresh = -1;
        WithThreads(2, () =>
        {
            using var scope = NewDisposeScope();
            var queue = new FactorizationQueue();
            using var started = new ManualResetEventSlim();
            for (int i = 0; i < 4; i++)
            {
                var m = Spd(300, i);   // Σ d³ above FactorizationQueue.MinimumSideBySideCost
                queue.Add(new (Tensor, Func<Tensor[]>)[]
                {
                    (m, () =>
                    {
                        // The first part to run starts a thread and waits for its count, while every part is still pending.
                        if (!started.IsSet)
                        {
                            lock (started)
                            {
                                if (!started.IsSet)
                                {
                                    var t = new Thread(() => fresh = torch.get_num_threads());
                                    t.Start();
                                    t.Join();
                                    started.Set();
                                }
                            }
                        }
                        return new[] { m.mul(2) };
                    }),
                }, _ => { });
            }
            queue.Run();
        });
        Assert.Equal(2, fresh);
    }

    /// <summary>Idle helpers keep nothing of a queue that ran: what its parts captured can be collected.</summary>
    [Fact]
    public void AfterARun_IdleHelpersHoldNothingOfIt()
    {
        WeakReference captured = null!;
        WithThreads(2, () => captured = RunQueueCapturing());
        for (int i = 0; i < 3 && captured.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        Assert.False(captured.IsAlive, "an object captured by the queue's parts is still reachable");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference RunQueueCapturing()
    {
        using var scope = NewDisposeScope();
        var held = new byte[1024];
        var queue = new FactorizationQueue();
        for (int i = 0; i < 4; i++)
        {
            var m = Spd(300, i);   // Σ d³ above FactorizationQueue.MinimumSideBySideCost
            queue.Add(new (Tensor, Func<Tensor[]>)[] { (m, () => { GC.KeepAlive(held); return new[] { m.mul(2) }; }) }, _ => { });
        }
        queue.Run();
        return new WeakReference(held);
    }

    /// <summary>
    /// An eigendecomposition that fails on a helper thread reaches the caller as the one computed on the caller would
    /// (type and message), the other block's basis is replaced, and the failed block keeps the basis it had.
    /// </summary>
    [Fact]
    public void FailingEigendecompositionOnAHelper_ReachesTheCallerAsOnTheCaller_OtherBlocksComplete()
    {
        using var scope = NewDisposeScope();
        var bad = Spd(301, 2).narrow(0, 0, 300);   // not square: libtorch refuses it
        Exception expected = null!;
        WithThreads(1, () => expected = Assert.ThrowsAny<Exception>(() => KroneckerEigenbasis.Decompose(bad)));
        using var good = new KroneckerEigenbasis();
        using var failing = new KroneckerEigenbasis();
        failing.Refresh(Spd(300, 3), Spd(300, 4));
        var before = failing.OutputGradientBasis.clone();
        Exception got = null!;
        WithThreads(2, () =>
        {
            var queue = new FactorizationQueue();
            good.QueueRefresh(Spd(300, 5), Spd(300, 6), queue);
            failing.QueueRefresh(Spd(300, 7), bad, queue);
            got = Assert.ThrowsAny<Exception>(queue.Run);
        });
        Assert.Equal(expected.GetType(), got.GetType());
        Assert.Equal(expected.Message, got.Message);
        Assert.True(good.HasValue);
        Assert.True(before.equal(failing.OutputGradientBasis).all().item<bool>(), "the failed block's basis changed");
    }

    private static NaturalGradientOptions Options(CurvatureStructure structure, KfacInverseMethod inverse, DampingSchedule schedule, LayerDamping layers) => new()
    {
        LearningRate = 0.2, Momentum = 0.5, DampingSchedule = schedule,
        Preconditioner = new PreconditionerOptions
        {
            Structure = structure, Fisher = FisherKind.MonteCarlo, Damping = 1e-2, Seed = 11, LayerDamping = layers,
            Kfac = new KfacOptions { FactorDecay = 0.9, FactorUpdatePeriod = 1, InverseUpdatePeriod = 3, InverseMethod = inverse },
        },
    };

    private static (Tensor X, Tensor Y) Data()
    {
        var x = TestModels.Inputs(2 * Batch, Widths[0], 5);
        manual_seed(6);
        var y = randint(0, Widths[^1], new long[] { 2 * Batch });
        return (x, y);
    }

    private static void Run(NaturalGradientDescent ngd, Tensor x, Tensor y, int from, int to)
    {
        for (int s = from; s < to; s++)
        {
            using var scope = NewDisposeScope();
            ngd.Step(x.narrow(0, s % 2 * Batch, Batch), y.narrow(0, s % 2 * Batch, Batch));
        }
    }

    /// <summary>A model (its initialisation from the global generator, so made on one thread) and the data.</summary>
    private static (nn.Module<Tensor, Tensor> Model, Tensor X, Tensor Y) Setup(long seed)
    {
        var (x, y) = Data();
        return (TestModels.Mlp(Widths, seed: seed), x, y);
    }

    private static Tensor[] Train(NaturalGradientOptions options, int steps, (nn.Module<Tensor, Tensor> Model, Tensor X, Tensor Y) setup)
    {
        using (var ngd = new NaturalGradientDescent(setup.Model, new CategoricalLikelihood(), options)) Run(ngd, setup.X, setup.Y, 0, steps);
        return setup.Model.parameters().Select(p => p.detach().clone()).ToArray();
    }

    public static TheoryData<CurvatureStructure, KfacInverseMethod, DampingSchedule, LayerDamping> Configurations() => new()
    {
        { CurvatureStructure.Kfac, KfacInverseMethod.Cholesky, DampingSchedule.LevenbergMarquardt, LayerDamping.Relative },
        { CurvatureStructure.Kfac, KfacInverseMethod.Eigen, DampingSchedule.Constant, LayerDamping.Global },
        { CurvatureStructure.Ekfac, KfacInverseMethod.Eigen, DampingSchedule.Constant, LayerDamping.Global },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void TwoOptimizersOnTwoThreads_TakeTheStepsEachTakesAlone(CurvatureStructure structure, KfacInverseMethod inverse, DampingSchedule schedule, LayerDamping layers)
    {
        var options = Options(structure, inverse, schedule, layers);
        const int steps = 5;   // refreshes at 0 and 3
        Tensor[] aloneA = null!, aloneB = null!;
        WithThreads(2, () =>
        {
            aloneA = Train(options, steps, Setup(1));
            aloneB = Train(options, steps, Setup(2));
        });
        Tensor[]? togetherA = null, togetherB = null;
        Exception? failure = null;
        using var go = new Barrier(2);
        var setupA = Setup(1);
        var setupB = Setup(2);
        Thread Start((nn.Module<Tensor, Tensor>, Tensor, Tensor) setup, Action<Tensor[]> keep) => new(() =>
        {
            try
            {
                torch.set_num_threads(2);
                go.SignalAndWait();
                keep(Train(options, steps, setup));
            }
            catch (Exception e) { failure = e; }
        });
        var a = Start(setupA, r => togetherA = r);
        var b = Start(setupB, r => togetherB = r);
        a.Start(); b.Start();
        Assert.True(a.Join(TimeSpan.FromMinutes(3)) && b.Join(TimeSpan.FromMinutes(3)), "the optimisers did not finish");
        Assert.Null(failure);
        for (int i = 0; i < aloneA.Length; i++)
        {
            Assert.True(aloneA[i].equal(togetherA![i]).all().item<bool>(), $"parameter {i} of the first optimiser");
            Assert.True(aloneB[i].equal(togetherB![i]).all().item<bool>(), $"parameter {i} of the second optimiser");
        }
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void ResumedMidPeriod_TakesTheUninterruptedSteps(CurvatureStructure structure, KfacInverseMethod inverse, DampingSchedule schedule, LayerDamping layers)
    {
        var options = Options(structure, inverse, schedule, layers);
        var (x, y) = Data();
        WithThreads(2, () => Lifecycle.ResumeCheck.AssertResumedRunEqualsStraightRun(
            seed => TestModels.Mlp(Widths, seed: seed), new CategoricalLikelihood(), options,
            (ngd, from, to) => Run(ngd, x, y, from, to), steps: 7, stopAfter: 4, label: $"{structure} {inverse}: "));
    }
}
