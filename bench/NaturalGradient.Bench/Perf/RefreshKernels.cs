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
/// 256 × width: the diagonal's (δ∘δ)ᵀ(ā∘ā) and SGD's own weight gradient), Cholesky, the inverse from it, and eigh, with the
/// torch thread count of the run and the process's OpenMP wait policy, which LAPACK's speed depends on.
/// Median of <c>reps</c> timed calls after two warm-up calls; all kernels of a width interleave within each repetition.
/// </summary>
internal static class RefreshKernels
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static object Run(int reps, StringBuilder md)
    {
        var policy = Results.OmpWaitPolicy();
        Console.WriteLine($"kernels: {get_num_threads()} torch threads, OMP_WAIT_POLICY {policy}, median of {reps}");
        md.AppendLine($"## Refresh kernels ({get_num_threads()} torch threads, OMP_WAIT_POLICY {policy}, float32, median of {reps} calls, ms)").AppendLine();
        md.AppendLine("| width | factor GEMM (addmm) | factor GEMM (symmetric blocks) | factor GEMM (bfloat16) | bfloat16 factor's relative error | DᵀĀ, D 256 × 512 | Cholesky | Cholesky inverse | eigh |");
        md.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
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
                ("cholesky", () => linalg.cholesky_ex(factor)),
                ("cholesky_inverse", () => cholesky_inverse(lower)),
                ("eigh", () => linalg.eigh(factor)),
            };
            var times = kernels.ToDictionary(k => k.Name, _ => new List<double>());
            for (int r = -2; r < reps; r++)
                foreach (var (name, call) in kernels)
                {
                    using var inner = NewDisposeScope();
                    var sw = Stopwatch.StartNew();
                    call();
                    if (r >= 0) times[name].Add(sw.Elapsed.TotalMilliseconds);
                }
            var median = times.ToDictionary(t => t.Key, t => t.Value.Order().ElementAt(t.Value.Count / 2));
            Console.WriteLine($"  width {width}: " + string.Join("  ", median.Select(m => string.Create(Inv, $"{m.Key} {m.Value:F2} ms")))
                + string.Create(Inv, $"  bfloat16 factor error {bf16Error:E1}"));
            md.AppendLine(string.Create(Inv, $"| {width} | {median["gemm"]:F2} | {median["gemm_symmetric"]:F2} | {median["gemm_bfloat16"]:F2} | {bf16Error:E1} | {median["weight_gradient_gemm"]:F2} | {median["cholesky"]:F2} | {median["cholesky_inverse"]:F2} | {median["eigh"]:F2} |"));
            rows.Add(new { width, median_ms = median, bfloat16_factor_relative_error = bf16Error });
        }
        md.AppendLine();
        return new { threads = get_num_threads(), omp_wait_policy = policy, reps, rows };
    }
}
