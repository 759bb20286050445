using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Cholesky factors of a batch of small float64 symmetric positive definite matrices (n ≤ <see cref="MaxOrder"/>) on
/// the CPU, computed on the calling thread row by row (Cholesky–Banachiewicz: L_ij = (A_ij − Σ_k&lt;j L_ik L_jk) / L_jj,
/// L_ii = √(A_ii − Σ_k&lt;i L_ik²)), the sums as SIMD dot products of contiguous row prefixes, four rows j at a time.
/// </summary>
/// <remarks>
/// TENGraD's push-through systems (w K + λI, n = the batch size: 128 × 128 on the figure-5 nets, 256 × 256 on the MLP at
/// batch 256) are this small. LAPACK's potrf, which <c>linalg.cholesky_ex</c> calls once per matrix, factors them
/// unblocked and through the process's OpenMP threads; on this machine kind it took 0.1–0.4 ms per 128 × 128 matrix
/// (about 2–7 GFLOP/s, varying with the load of the second core), this loop about 0.1 ms
/// (<c>perf --part kernels</c>, table "The push-through solve"; docs/PERFORMANCE.md). Larger, non-CPU or non-float64
/// inputs go to <c>linalg.cholesky_ex</c>.
/// </remarks>
internal static class SmallCholesky
{
    /// <summary>Largest order factored here; larger matrices go to LAPACK, whose blocked potrf is faster there.</summary>
    public const int MaxOrder = 512;

    /// <summary>
    /// (L, info) as <c>linalg.cholesky_ex(a)</c>: L (… × n × n, a fresh tensor) holds the lower factor with zeros above the
    /// diagonal, and info (…, int32) is 0 where the factorisation succeeded and otherwise the 1-based order of the first
    /// leading minor found not positive definite (a pivot ≤ 0 or NaN), LAPACK's convention; that matrix's factor is then
    /// incomplete. Only the lower triangle of <paramref name="a"/> is read.
    /// </summary>
    public static (Tensor Factor, Tensor Info) Factor(Tensor a)
    {
        long n = a.size(-1);
        if (a.device_type != DeviceType.CPU || a.dtype != ScalarType.Float64 || a.dim() < 2 || n > MaxOrder || n == 0 || a.size(-2) != n)
            return linalg.cholesky_ex(a);
        var factor = a.contiguous().clone();
        var batchShape = a.shape[..^2];
        long count = factor.numel() / (n * n);
        var info = new int[count];
        using (var storage = factor.storage<double>())
        {
            unsafe
            {
                double* start = (double*)storage.data_ptr() + factor.storage_offset();
                for (long b = 0; b < count; b++) info[b] = FactorInPlace(start + b * n * n, (int)n);
            }
        }
        return (factor, tensor(info).reshape(batchShape));
    }

    /// <summary>Factors the row-major n × n matrix at <paramref name="a"/> in place; returns LAPACK's info.</summary>
    private static unsafe int FactorInPlace(double* a, int n)
    {
        int width = Vector<double>.Count;
        for (int i = 0; i < n; i++)
        {
            double* ri = a + (long)i * n;
            int j = 0;
            for (; j + 4 <= i; j += 4)
            {
                double* r0 = a + (long)j * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
                var s0 = Vector<double>.Zero;
                var s1 = s0;
                var s2 = s0;
                var s3 = s0;
                int k = 0;
                for (; k + width <= j; k += width)
                {
                    var x = Vector.Load(ri + k);
                    s0 = Vector.FusedMultiplyAdd(x, Vector.Load(r0 + k), s0);
                    s1 = Vector.FusedMultiplyAdd(x, Vector.Load(r1 + k), s1);
                    s2 = Vector.FusedMultiplyAdd(x, Vector.Load(r2 + k), s2);
                    s3 = Vector.FusedMultiplyAdd(x, Vector.Load(r3 + k), s3);
                }
                double d0 = Vector.Sum(s0), d1 = Vector.Sum(s1), d2 = Vector.Sum(s2), d3 = Vector.Sum(s3);
                for (; k < j; k++)
                {
                    double x = ri[k];
                    d0 += x * r0[k];
                    d1 += x * r1[k];
                    d2 += x * r2[k];
                    d3 += x * r3[k];
                }
                // Columns j … j+3 of row i depend on each other through the triangle of rows j … j+3.
                double l0 = (ri[j] - d0) / r0[j];
                ri[j] = l0;
                double l1 = (ri[j + 1] - d1 - l0 * r1[j]) / r1[j + 1];
                ri[j + 1] = l1;
                double l2 = (ri[j + 2] - d2 - l0 * r2[j] - l1 * r2[j + 1]) / r2[j + 2];
                ri[j + 2] = l2;
                ri[j + 3] = (ri[j + 3] - d3 - l0 * r3[j] - l1 * r3[j + 1] - l2 * r3[j + 2]) / r3[j + 3];
            }
            for (; j < i; j++)
            {
                double* rj = a + (long)j * n;
                double d = 0;
                for (int k = 0; k < j; k++) d += ri[k] * rj[k];
                ri[j] = (ri[j] - d) / rj[j];
            }
            double s = 0;
            for (int k = 0; k < i; k++) s += ri[k] * ri[k];
            double pivot = ri[i] - s;
            if (!(pivot > 0)) return i + 1;
            ri[i] = Math.Sqrt(pivot);
            for (int k = i + 1; k < n; k++) ri[k] = 0;
        }
        return 0;
    }
}
