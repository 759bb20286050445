using System.Diagnostics;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training.Experiments.Scale;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench.Perf;

/// <summary>One problem of the step benchmark: a model factory, one fixed batch and the layer shapes.</summary>
internal sealed record StepProblem(string Name, string Group, Func<nn.Module<Tensor, Tensor>> Model, Tensor X, Tensor Y, ILikelihood Likelihood,
    IReadOnlyList<LayerShape> Layers)
{
    public long Batch => X.shape[0];
}

/// <summary>What one configuration measured on one problem.</summary>
internal sealed record StepFigure(string Method, string Path, string Label, double MedianMs, double RatioToSgd, double RatioP10, double RatioP90,
    double? FloorRatio, double ExtraGflop, int Rounds, double TensorsPerStep);

/// <summary>
/// Interleaved timing: in each round every configuration takes a block of <c>block</c> consecutive steps (a whole
/// inverse period, so refreshes are amortised as in training), timed as one, and a GEMM of the problem's first-layer
/// shape is timed too. SGD takes a second block at the end of each round, and its time in the round is the mean of its
/// two blocks. A configuration's ratio is the median over rounds of (its block time / SGD's time in the same round):
/// load changes between rounds cancel, and a load that drifts within a round cancels to first order. A block is lengthened to a whole multiple of <c>block</c> for
/// which SGD's block lasts at least <see cref="MinimumBlockMs"/> (timed once after the warm-up round): a step of a
/// fraction of a millisecond (the depth-1 figure-5 net's) would otherwise make blocks of a few milliseconds, which one
/// scheduling hiccup of a shared machine doubles. One warm-up round is not timed; in it the tensors each
/// configuration creates per step are counted (TorchSharp's per-thread dispose-scope statistics: one per native result,
/// views and aliases included), a measure of its fixed per-step work that does not depend on the machine's load.
/// With <c>cpuClock</c> the times are the process's CPU time (all threads, CLOCK_PROCESS_CPUTIME_ID) instead of wall
/// time: on a machine shared with other work, time spent descheduled is not counted (threads wait passively with
/// OMP_WAIT_POLICY=PASSIVE), so the ratios measure the work; parts that use fewer threads than the SGD step (LAPACK
/// factorisations) weigh less than in wall time.
/// </summary>
internal static class InterleavedSteps
{
    /// <summary>The shortest SGD block, in ms, that a block's length is chosen for.</summary>
    public const double MinimumBlockMs = 100;

    public static (List<StepFigure> Figures, double GemmGflops, int BlockSteps) Run(StepProblem problem, IReadOnlyList<string> methods, bool bothPaths, int rounds, int block,
        Action<string> log, bool cpuClock = false)
    {
        var configs = StepConfigs.Build(problem.Model, problem.Likelihood, methods, bothPaths);
        try
        {
            var times = configs.ToDictionary(c => c.Label, _ => new List<double>());
            var tensors = configs.ToDictionary(c => c.Label, _ => 0.0);
            var gemm = new List<double>();
            var a = randn(problem.Batch, problem.Layers[0].InBar);
            var b = randn(problem.Layers[0].InBar, problem.Layers[0].Out);
            var sgd = configs.Single(c => c.Label == "sgd");
            for (int r = 0; r <= rounds; r++)
            {
                foreach (var c in configs)
                {
                    long created = Created();
                    double elapsed = TimeBlock(c, problem, block, cpuClock);
                    if (r > 0) times[c.Label].Add(elapsed / block);
                    else tensors[c.Label] = (Created() - created) / (double)block;
                }
                // SGD's reference in a round is the mean of a block at its start and one at its end: a load that
                // drifts within the round cancels to first order, and the one number every ratio of the round is
                // divided by has half the variance of a single block's.
                double sgdStart = r > 0 ? times["sgd"][^1] : 0, sgdEnd = r > 0 ? TimeBlock(sgd, problem, block, cpuClock) / block : 0;
                if (r > 0) times["sgd"][^1] = 0.5 * (sgdStart + sgdEnd);
                double rate0 = GemmGflops(a, b, cpuClock);
                if (r == 0)                                              // the warm-up round counts for neither steps nor GEMM
                {
                    block *= BlockMultiple(sgd, problem, block, cpuClock);
                    continue;
                }
                gemm.Add(rate0);
                log($"  round {r}/{rounds}: sgd {times["sgd"][^1]:F2} ms/step (start {sgdStart:F2}, end {sgdEnd:F2}), GEMM {gemm[^1]:F1} GFLOP/s");
            }
            double rate = Median(gemm);
            double sgdMs = Median(times["sgd"]);
            var figures = new List<StepFigure>();
            foreach (var c in configs)
            {
                var ratios = times[c.Label].Select((t, i) => t / times["sgd"][i]).OrderBy(v => v).ToList();
                double extra = FlopModel.Extra(StepConfigs.Factorized(c.Method), problem.Layers, problem.Batch, StepConfigs.InversePeriodOf(c.Method), StepConfigs.FactorPeriod(c.Method), StepConfigs.CgIterations, c.Path == "optimizer");
                double? floor = double.IsNaN(extra) ? null : 1 + extra / (rate * 1e9) * 1e3 / sgdMs;
                figures.Add(new StepFigure(c.Method, c.Path, c.Label, Median(times[c.Label]), Quantile(ratios, 0.5), Quantile(ratios, 0.1), Quantile(ratios, 0.9),
                    floor, extra / 1e9, rounds, tensors[c.Label]));
            }
            return (figures, rate, block);
        }
        finally
        {
            foreach (var c in configs) c.Dispose();
        }
    }

    /// <summary>Wall (or CPU) milliseconds of <paramref name="steps"/> consecutive steps of one configuration, after a GC.</summary>
    private static double TimeBlock(StepConfig config, StepProblem problem, int steps, bool cpuClock)
    {
        GC.Collect();
        double start = Clock.Milliseconds(cpuClock);
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            config.Step(problem.X, problem.Y);
        }
        return Clock.Milliseconds(cpuClock) - start;
    }

    /// <summary>The smallest k ≥ 1 for which k blocks of SGD steps last at least <see cref="MinimumBlockMs"/>, from one timed block.</summary>
    private static int BlockMultiple(StepConfig sgd, StepProblem problem, int block, bool cpuClock)
    {
        double ms = TimeBlock(sgd, problem, block, cpuClock);
        return ms >= MinimumBlockMs || ms <= 0 ? 1 : (int)Math.Ceiling(MinimumBlockMs / ms);
    }

    /// <summary>Tensors created so far on this thread, inside and outside dispose scopes.</summary>
    private static long Created()
    {
        var statistics = DisposeScopeManager.Statistics;
        return statistics.CreatedInScopeCount + statistics.CreatedOutsideScopeCount;
    }

    /// <summary>GFLOP/s of a float32 (m × in') · (in' × out) product: median of 9 timings after one warm-up.</summary>
    private static double GemmGflops(Tensor a, Tensor b, bool cpuClock)
    {
        var t = new List<double>();
        for (int i = 0; i < 10; i++)
        {
            using var scope = NewDisposeScope();
            double start = Clock.Milliseconds(cpuClock);
            a.mm(b);
            if (i > 0) t.Add((Clock.Milliseconds(cpuClock) - start) / 1e3);
        }
        return 2.0 * a.shape[0] * a.shape[1] * b.shape[1] / Median(t) / 1e9;
    }

    public static double Median(IReadOnlyList<double> v) => Quantile(v.OrderBy(x => x).ToList(), 0.5);

    public static double Quantile(IReadOnlyList<double> sorted, double q) => StepCostProbe.Percentile(sorted, q);
}

/// <summary>Milliseconds of wall time, or of the process's CPU time summed over its threads.</summary>
internal static class Clock
{
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec value);

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    private const int ProcessCpuTime = 2;   // CLOCK_PROCESS_CPUTIME_ID (Linux)
    private static readonly Stopwatch Wall = Stopwatch.StartNew();

    public static double Milliseconds(bool cpu)
    {
        if (!cpu) return Wall.Elapsed.TotalMilliseconds;
        if (ClockGetTime(ProcessCpuTime, out var t) != 0) throw new IOException("clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed: --clock cpu needs Linux");
        return t.Seconds * 1e3 + t.Nanoseconds / 1e6;
    }
}
