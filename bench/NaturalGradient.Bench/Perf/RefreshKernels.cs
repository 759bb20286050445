using System.Diagnostics;
using System.Globalization;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench.Perf;

/// <summary>
/// <c>perf --part kernels</c>: the dense kernels of a K-FAC/EKFAC step and refresh at the widths of MLP
/// 784-512-512-10's factors (785, 513, 512; float32, SPD matrices from 256 random rows plus 0.01 I): the factor GEMM
/// ĀᵀĀ (as one addmm, as the symmetric 2 × 2 block accumulation, and by the bfloat16 path of
/// <see cref="NaturalGradient.Curvature.Kfac.KfacFactorPrecision.Bfloat16"/> with its relative error on one batch's
/// factor against float64), the weight-gradient-shaped product DᵀĀ (512 × 256 ·
/// 256 × width: the diagonal's (δ∘δ)ᵀ(ā∘ā) and SGD's own weight gradient), the solve's product Ā R (256 × width ·
/// width × width) and its transpose R Āᵀ (width × width · width × 256: the mean-gradient route's A⁻ᵀĀᵀ) in float32, Ā R as <see cref="NaturalGradient.Curvature.Kfac.KfacInversePrecision.Bfloat16"/>
/// forms it (Ā rounded to bfloat16, R a bfloat16 copy), Cholesky, the inverse from it, and eigh (libtorch's, and as
/// the library runs it: <see cref="NaturalGradient.Numerics.SymmetricEigh"/>, power-of-two widths one wider), with the
/// torch thread count of the run and the process's OpenMP wait policy, which LAPACK's speed depends on.
/// Median of <c>reps</c> timed calls after two warm-up calls; all kernels of a width interleave within each repetition.
/// Then a whole K-FAC refresh of the MLP's six factors (785, 512, 513, 512, 513, 10): their Cholesky inverses, and
/// their eigendecompositions (<see cref="NaturalGradient.Numerics.SymmetricEigh"/>), one after another on the run's threads, one after another on one thread, and side by side
/// as the library runs them (<see cref="NaturalGradient.Numerics.FactorizationQueue"/>: n helper threads of one torch
/// thread each while the caller waits, largest factor first).
/// Then TENGraD's 128 × 128 float64 system: Cholesky against eigh; its batched push-through solve with cholesky_solve and with triangular solves; the statistics guard's reductions: norms against dot products; last, TENGraD's small-layer kernels: the Gram and Jᵀu by GEMMs against the loops on the calling thread.
/// </summary>
internal static class RefreshKernels
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static object Run(int reps, StringBuilder md)
    {
        var policy = Results.OmpWaitPolicy();
        Console.WriteLine($"kernels: {get_num_threads()} torch threads, OMP_WAIT_POLICY {policy}, median of {reps}");
        md.AppendLine($"## Refresh kernels ({get_num_threads()} torch threads, OMP_WAIT_POLICY {policy}, float32, median of {reps} calls, ms)").AppendLine();
        md.AppendLine("| width | factor GEMM (addmm) | factor GEMM (symmetric blocks) | factor GEMM (bfloat16) | bfloat16 factor's relative error | DᵀĀ, D 256 × 512 | Ā R (float32) | R Āᵀ (float32) | Ā R (bfloat16) | Cholesky | Cholesky inverse | eigh | eigh as the library runs it (SymmetricEigh) |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        var rows = new List<object>();
        foreach (int width in new[] { 785, 513, 512 })
        {
            using var scope = NewDisposeScope();
            manual_seed(width);
            var x = randn(256, width);
            var d = randn(256, 512);
            var factor = x.t().mm(x).div_(256).add_(eye(width).mul_(0.01));
            var accumulator = factor.clone();
            var lower = linalg.cholesky(factor);
            var factorLow = factor.to_type(ScalarType.BFloat16);   // the solve's bfloat16 copy (KfacInversePrecision.Bfloat16)
            // The bfloat16 path's error on one batch's factor ĀᵀĀ/m (relative, Frobenius), against float64.
            var exact = x.to_type(ScalarType.Float64).t().mm(x.to_type(ScalarType.Float64)).div_(256);
            var low = zeros(width, width);
            NaturalGradient.Curvature.Kfac.RunningAverage.AccumulateBFloat16Product(low, x, x, 0f, 1f / 256);
            double bf16Error = (low.to_type(ScalarType.Float64) - exact).norm().item<double>() / exact.norm().item<double>();
            var kernels = new (string Name, Action Call)[]
            {
                ("gemm", () => accumulator.addmm_(x.t(), x, beta: 0.95f, alpha: 0.05f / 256)),
                ("gemm_symmetric", () => NaturalGradient.Curvature.Kfac.RunningAverage.AccumulateSymmetricGram(accumulator, x, 0.95f, 0.05f / 256)),
                ("gemm_bfloat16", () => NaturalGradient.Curvature.Kfac.RunningAverage.AccumulateBFloat16Product(accumulator, x, x, 0.95f, 0.05f / 256)),
                ("weight_gradient_gemm", () => d.t().mm(x)),
                ("solve_product", () => x.mm(factor)),
                ("solve_product_transposed", () => factor.mm(x.t())),
                ("solve_product_bfloat16", () => x.to_type(ScalarType.BFloat16).mm(factorLow)),
                ("cholesky", () => linalg.cholesky_ex(factor)),
                ("cholesky_inverse", () => cholesky_inverse(lower)),
                ("eigh", () => linalg.eigh(factor)),
                ("eigh_library", () => NaturalGradient.Numerics.SymmetricEigh.Of(factor)),
            };
            var median = MedianTimes(kernels, reps);
            Console.WriteLine($"  width {width}: " + string.Join("  ", median.Select(m => string.Create(Inv, $"{m.Key} {m.Value:F2} ms")))
                + string.Create(Inv, $"  bfloat16 factor error {bf16Error:E1}"));
            md.AppendLine(string.Create(Inv, $"| {width} | {median["gemm"]:F2} | {median["gemm_symmetric"]:F2} | {median["gemm_bfloat16"]:F2} | {bf16Error:E1} | {median["weight_gradient_gemm"]:F2} | {median["solve_product"]:F2} | {median["solve_product_transposed"]:F2} | {median["solve_product_bfloat16"]:F2} | {median["cholesky"]:F2} | {median["cholesky_inverse"]:F2} | {median["eigh"]:F2} | {median["eigh_library"]:F2} |"));
            rows.Add(new { width, median_ms = median, bfloat16_factor_relative_error = bf16Error });
        }
        md.AppendLine();
        var refresh = Refresh(reps, md);
        var gram = GramSolves(reps, md);
        var pushThrough = PushThroughSolves(reps, md);
        var guard = GuardReductions(reps, md);
        var smallLayers = SmallLayerKernels(reps, md);
        return new { threads = get_num_threads(), omp_wait_policy = policy, reps, rows, refresh, tengrad_gram = gram, push_through = pushThrough, statistics_guard = guard, small_layers = smallLayers };
    }

    /// <summary>
    /// TENGraD's batched push-through solve: b float64 systems w K + λI of width n (K = (ĀĀᵀ) ∘ (DDᵀ) of 21 and 20
    /// columns at n = 128, the figure-5 nets' layers; of 257 and 256 at n = 256, the MLP's at batch 256), each with one
    /// right-hand side: the factors by one batched <c>cholesky_ex</c> (LAPACK potrf per matrix) or by the right-looking loop
    /// the library takes (<see cref="NaturalGradient.Numerics.SmallCholesky.Factor"/>), then from them <c>cholesky_solve</c> or
    /// the two triangular solves the library takes (<see cref="NaturalGradient.Numerics.CholeskySolve.Apply"/>). b = 2 and 15 at n = 128 are
    /// the depth-1 and depth-16 figure-5 nets, b = 3 at n = 256 the MLP at batch 256. The last two columns time the whole
    /// solve from float32 Grams: by tensor operations over the batch (the Grams converted into a float64 buffer, the
    /// system formed from it, factored in place, solved, the rounding bound's sum), as the library takes it on other
    /// devices and above n = 256, and by <see cref="NaturalGradient.Numerics.DampedGramSystems.Solve"/>, one system at a
    /// time, as it takes it on the CPU.
    /// </summary>
    private static object PushThroughSolves(int reps, StringBuilder md)
    {
        md.AppendLine($"## The push-through solve: b float64 systems of width n, one right-hand side each (median of {reps}, ms)").AppendLine();
        md.AppendLine("| b × n | batched Cholesky (cholesky_ex) | Cholesky by SmallCholesky | then cholesky_solve | then two triangular solves (CholeskySolve) | whole solve, tensor operations | whole solve, DampedGramSystems |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
        var rows = new List<object>();
        foreach (var (b, n) in new[] { (2, 128), (15, 128), (3, 256) })
        {
            using var scope = NewDisposeScope();
            manual_seed(b * n);
            int columns = n == 128 ? 21 : 257;
            var a = randn(b, n, columns, dtype: ScalarType.Float64);
            var d = randn(b, n, columns - 1, dtype: ScalarType.Float64);
            var system = a.bmm(a.mT).mul_(d.bmm(d.mT)).mul_(1.0 / n);
            system.diagonal(0, -2, -1).add_(0.01);
            var rhs = full(b, n, 1, 1.0 / n, dtype: ScalarType.Float64);
            var lower = linalg.cholesky_ex(system).L;
            var a32 = a.to_type(ScalarType.Float32);
            var d32 = d.to_type(ScalarType.Float32);
            var grams32 = a32.bmm(a32.mT).mul_(d32.bmm(d32.mT));
            var gramList = grams32.unbind(0);
            var grams64 = empty(b, n, n, dtype: ScalarType.Float64);
            var scratch = empty(b, n, n, dtype: ScalarType.Float64);
            double[] weights = Enumerable.Repeat(1.0 / n, b).ToArray(), dampings = Enumerable.Repeat(0.01, b).ToArray(), c = Enumerable.Repeat(1.0 / n, b).ToArray();
            var kernels = new (string Name, Action Call)[]
            {
                ("cholesky", () => linalg.cholesky_ex(system)),
                ("small_cholesky", () => NaturalGradient.Numerics.SmallCholesky.Factor(system)),
                ("cholesky_solve", () => cholesky_solve(rhs, lower)),
                ("triangular", () => NaturalGradient.Numerics.CholeskySolve.Apply(lower, rhs)),
                ("tensor_path", () =>
                {
                    using var inner = NewDisposeScope();
                    grams64.copy_(grams32);
                    scratch.copy_(grams64).mul_(1.0 / n).diagonal(0, -2, -1).add_(0.01);
                    var (factor, _) = NaturalGradient.Numerics.SmallCholesky.Factor(scratch, overwrite: true);
                    var u = NaturalGradient.Numerics.CholeskySolve.Apply(factor, rhs).squeeze(2);
                    u.abs().mul_(grams64.diagonal(0, -2, -1).clamp_min(0).sqrt_()).sum(1);
                }),
                ("damped_gram_systems", () => NaturalGradient.Numerics.DampedGramSystems.Solve(gramList, weights, dampings, c, scratch)),
            };
            var median = MedianTimes(kernels, reps);
            md.AppendLine(string.Create(Inv, $"| {b} × {n} | {median["cholesky"]:F3} | {median["small_cholesky"]:F3} | {median["cholesky_solve"]:F3} | {median["triangular"]:F3} | {median["tensor_path"]:F3} | {median["damped_gram_systems"]:F3} |"));
            Console.WriteLine(string.Create(Inv, $"  push-through solve {b} × {n}: Cholesky {median["cholesky"]:F3} ms (SmallCholesky {median["small_cholesky"]:F3} ms), then cholesky_solve {median["cholesky_solve"]:F3} ms or triangular solves {median["triangular"]:F3} ms; whole solve from float32 Grams: tensor operations {median["tensor_path"]:F3} ms, DampedGramSystems {median["damped_gram_systems"]:F3} ms"));
            rows.Add(new { b, n, median_ms = median });
        }
        md.AppendLine();
        return rows;
    }

    /// <summary>
    /// TENGraD's n × n float64 system at n = 128 (the figure-5 nets' batch; K = (ĀĀᵀ) ∘ (DDᵀ) of 21 and 20 columns):
    /// the Cholesky of w K + λI that the push-through solves factor against the eigh of K that the split takes.
    /// </summary>
    private static object GramSolves(int reps, StringBuilder md)
    {
        using var scope = NewDisposeScope();
        manual_seed(128);
        var a = randn(128, 21, dtype: ScalarType.Float64);
        var d = randn(128, 20, dtype: ScalarType.Float64);
        var gram = a.mm(a.t()).mul_(d.mm(d.t()));
        var kernels = new (string Name, Action Call)[]
        {
            ("cholesky", () => { var s = gram.mul(1.0 / 128); s.diagonal().add_(0.01); linalg.cholesky_ex(s); }),
            ("eigh", () => linalg.eigh(gram)),
        };
        var median = MedianTimes(kernels, reps);
        md.AppendLine($"## TENGraD's n × n system, n = 128, float64 (median of {reps}, ms)").AppendLine();
        md.AppendLine("| Cholesky of w K + λI | eigh of K |").AppendLine("|---:|---:|");
        md.AppendLine(string.Create(Inv, $"| {median["cholesky"]:F3} | {median["eigh"]:F3} |")).AppendLine();
        Console.WriteLine(string.Create(Inv, $"  TENGraD n = 128 float64: Cholesky {median["cholesky"]:F3} ms, eigh {median["eigh"]:F3} ms"));
        return new { n = 128, cholesky_ms = median["cholesky"], eigh_ms = median["eigh"] };
    }

    /// <summary>
    /// The statistics guard's reductions (<see cref="NaturalGradient.Numerics.FiniteGuard.StatisticsBound"/>) on the MLP's
    /// six statistics at batch 256 (Ā of 785, 513, 513 columns; D of 512, 512, 10): the norm of each, against the dot
    /// product of each with itself that the guard takes for tensors of at least 32,768 entries.
    /// </summary>
    private static object GuardReductions(int reps, StringBuilder md)
    {
        using var scope = NewDisposeScope();
        manual_seed(6);
        var statistics = new[] { 785, 513, 513, 512, 512, 10 }.Select(w => randn(256, w)).ToArray();
        var kernels = new (string Name, Action Call)[]
        {
            ("norm", () => { foreach (var t in statistics) t.norm(); }),
            ("dot", () => { foreach (var t in statistics) { var f = t.reshape(-1); f.dot(f); } }),
        };
        var median = MedianTimes(kernels, reps);
        md.AppendLine($"## Statistics guard: the MLP's six statistics at batch 256 (median of {reps}, ms for the six)").AppendLine();
        md.AppendLine("| norms | dot products |").AppendLine("|---:|---:|");
        md.AppendLine(string.Create(Inv, $"| {median["norm"]:F3} | {median["dot"]:F3} |")).AppendLine();
        Console.WriteLine(string.Create(Inv, $"  statistics guard, six MLP statistics: norms {median["norm"]:F3} ms, dot products {median["dot"]:F3} ms"));
        return new { norm_ms = median["norm"], dot_ms = median["dot"] };
    }

    /// <summary>
    /// TENGraD's kernels for a small rank-one layer (float32, rows Ā of in' columns and D of out columns over n examples):
    /// the Gram K = (ĀĀᵀ) ∘ (DDᵀ) by two GEMMs and a product in place on the run's threads and on one torch thread,
    /// against <see cref="NaturalGradient.Numerics.RowGram"/>; and Δ = Jᵀu with ‖Δ‖ from a host u by tensor operations
    /// (u made a tensor, Dᵀ ∘ u, the GEMM, the norm read) against <see cref="NaturalGradient.Numerics.RowTransposeProduct"/>.
    /// The first three shapes are the figure-5 nets' layers at n = 128 (16 → 20, 20 → 20, the 20 → 1 head's rows); the
    /// others are near or above the limits where the library keeps the GEMMs ("–": not taken).
    /// </summary>
    private static object SmallLayerKernels(int reps, StringBuilder md)
    {
        md.AppendLine($"## Small-layer kernels: TENGraD's Gram and Jᵀu, float32 (median of {reps}, µs)").AppendLine();
        md.AppendLine("| n, in', out | Gram by GEMMs | Gram by GEMMs, one torch thread | RowGram | Jᵀu and ‖Δ‖ by tensor operations | RowTransposeProduct |");
        md.AppendLine("|---|---:|---:|---:|---:|---:|");
        var rows = new List<object>();
        int threads = get_num_threads();
        foreach (var (n, inputs, outputs) in new[] { (128, 17, 20), (128, 21, 20), (128, 21, 1), (128, 65, 64), (256, 33, 32) })
        {
            using var scope = NewDisposeScope();
            manual_seed(n + inputs + outputs);
            var a = randn(n, inputs);
            var d = randn(n, outputs);
            var dT = d.t();
            var u = Enumerable.Range(0, n).Select(i => Math.Sin(i + 1.0)).ToArray();
            bool gramApplies = NaturalGradient.Numerics.RowGram.Applies(a, d), productApplies = NaturalGradient.Numerics.RowTransposeProduct.Applies(d, a);
            var kernels = new List<(string Name, Action Call)>
            {
                ("gram_gemm", () => a.mm(a.t()).mul_(d.mm(dT))),
                ("product_tensors", () => dT.mul(tensor(u).to_type(ScalarType.Float32)).mm(a).norm().item<float>()),
            };
            if (gramApplies) kernels.Add(("row_gram", () => NaturalGradient.Numerics.RowGram.Form(a, d)));
            if (productApplies) kernels.Add(("row_product", () => NaturalGradient.Numerics.RowTransposeProduct.Multiply(d, a, u)));
            var median = MedianTimes(kernels.ToArray(), reps).ToDictionary(kv => kv.Key, kv => kv.Value * 1000);   // µs
            set_num_threads(1);   // the same GEMMs timed apart on one thread (the thread count is process-wide)
            try { median["gram_gemm_one_thread"] = MedianTimes(new (string, Action)[] { ("gemm", () => a.mm(a.t()).mul_(d.mm(dT))) }, reps)["gemm"] * 1000; }
            finally { set_num_threads(threads); }
            string Cell(string name) => median.TryGetValue(name, out var value) ? value.ToString("F1", Inv) : "–";
            md.AppendLine($"| {n}, {inputs}, {outputs} | {Cell("gram_gemm")} | {Cell("gram_gemm_one_thread")} | {Cell("row_gram")} | {Cell("product_tensors")} | {Cell("row_product")} |");
            Console.WriteLine($"  small layer n {n}, in' {inputs}, out {outputs}: Gram by GEMMs {Cell("gram_gemm")} µs (one thread {Cell("gram_gemm_one_thread")} µs), RowGram {Cell("row_gram")} µs; Jᵀu by tensors {Cell("product_tensors")} µs, RowTransposeProduct {Cell("row_product")} µs");
            rows.Add(new { n, inputs, outputs, median_us = median });
        }
        md.AppendLine();
        return rows;
    }

    /// <summary>Median wall time (ms) of each kernel over <paramref name="reps"/> calls after two warm-up calls; the kernels interleave within each repetition, each call in its own dispose scope.</summary>
    private static Dictionary<string, double> MedianTimes((string Name, Action Call)[] kernels, int reps)
    {
        var times = kernels.ToDictionary(k => k.Name, _ => new List<double>());
        for (int r = -2; r < reps; r++)
            foreach (var (name, call) in kernels)
            {
                using var inner = NewDisposeScope();
                var sw = Stopwatch.StartNew();
                call();
                if (r >= 0) times[name].Add(sw.Elapsed.TotalMilliseconds);
            }
        return times.ToDictionary(t => t.Key, t => t.Value.Order().ElementAt(t.Value.Count / 2));
    }

    /// <summary>The six factors' Cholesky inverses and eigendecompositions: sequential (run's threads, one thread) and side by side.</summary>
    private static object Refresh(int reps, StringBuilder md)
    {
        int threads = get_num_threads();
        var widths = new[] { 785, 512, 513, 512, 513, 10 };
        var factors = widths.Select(w =>
        {
            manual_seed(w);
            var x = randn(256, w);
            return x.t().mm(x).div_(256).add_(eye(w).mul_(0.01)).DetachFromDisposeScope();
        }).ToArray();
        static void Decompose(Tensor f, bool eigh)
        {
            using var scope = NewDisposeScope();
            if (eigh) NaturalGradient.Numerics.SymmetricEigh.Of(f);
            else cholesky_inverse(linalg.cholesky_ex(f).L);
        }
        double Sequential(bool eigh, int t)
        {
            set_num_threads(t);
            var sw = Stopwatch.StartNew();
            foreach (var f in factors) Decompose(f, eigh);
            double ms = sw.Elapsed.TotalMilliseconds;
            set_num_threads(threads);
            return ms;
        }
        // As the library runs a refresh: one FactorizationQueue, parts on n helper threads of one torch thread each.
        double SideBySide(bool eigh)
        {
            var sw = Stopwatch.StartNew();
            var queue = new NaturalGradient.Numerics.FactorizationQueue();
            foreach (var f in factors)
                queue.Add(new (Tensor, Func<Tensor[]>)[] { (f, () => eigh ? Pair(NaturalGradient.Numerics.SymmetricEigh.Of(f)) : new[] { cholesky_inverse(linalg.cholesky_ex(f).L) }) },
                    results => { foreach (var t in results.SelectMany(r => r)) t.Dispose(); });
            queue.Run();
            return sw.Elapsed.TotalMilliseconds;
        }
        static Tensor[] Pair((Tensor Values, Tensor Vectors) d) => new[] { d.Values, d.Vectors };
        var names = new[] { "sequential", "sequential_one_thread", "side_by_side" };
        var times = new Dictionary<(bool, string), List<double>>();
        foreach (bool eigh in new[] { false, true })
            foreach (var n in names) times[(eigh, n)] = new();
        for (int r = -1; r < reps; r++)
            foreach (bool eigh in new[] { false, true })
            {
                double a = Sequential(eigh, threads), b = Sequential(eigh, 1), c = SideBySide(eigh);
                if (r < 0) continue;
                times[(eigh, names[0])].Add(a); times[(eigh, names[1])].Add(b); times[(eigh, names[2])].Add(c);
            }
        foreach (var f in factors) f.Dispose();
        double Median(bool eigh, string n) => times[(eigh, n)].Order().ElementAt(times[(eigh, n)].Count / 2);
        md.AppendLine($"## A refresh of the six factors (widths {string.Join(", ", widths)}; median of {reps}, ms)").AppendLine();
        md.AppendLine($"| kernel | sequential, {threads} torch threads | sequential, 1 thread | side by side ({threads} threads of 1 torch thread: FactorizationQueue) |");
        md.AppendLine("|---|---:|---:|---:|");
        var result = new List<object>();
        foreach (bool eigh in new[] { false, true })
        {
            string kernel = eigh ? "eigh" : "Cholesky + inverse";
            md.AppendLine(string.Create(Inv, $"| {kernel} | {Median(eigh, names[0]):F1} | {Median(eigh, names[1]):F1} | {Median(eigh, names[2]):F1} |"));
            Console.WriteLine(string.Create(Inv, $"  refresh, {kernel}: sequential {Median(eigh, names[0]):F1} ms ({threads} threads), {Median(eigh, names[1]):F1} ms (1 thread), side by side {Median(eigh, names[2]):F1} ms"));
            result.Add(new { kernel, sequential_ms = Median(eigh, names[0]), sequential_one_thread_ms = Median(eigh, names[1]), side_by_side_ms = Median(eigh, names[2]) });
        }
        md.AppendLine();
        return result;
    }
}
