using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Cholesky factors of a batch of small float64 symmetric positive definite matrices (n ≤ <see cref="MaxOrder"/>) on
/// the CPU, computed on the calling thread: the right-looking algorithm for A = UᵀU on A stored by rows (U = Lᵀ), four
/// rows of U at a time. Row j of U is row j as the rows before it left it, divided by the square root of its diagonal
/// entry (the pivot); each later row i then subtracts U_ji · (row j of U) from its part right of the diagonal. The four
/// rows of a panel are finished among themselves, and every later row takes their four updates in one contiguous SIMD
/// pass.
/// </summary>
/// <remarks>
/// TENGraD's push-through systems (w K + λI, n = the batch size: 128 × 128 on the figure-5 nets, 256 × 256 on the MLP at
/// batch 256) are this small. LAPACK's potrf, which <c>linalg.cholesky_ex</c> calls once per matrix, factors them
/// unblocked (matrix-vector products) at a few GFLOP/s; this loop took about half as long for 128 × 128 matrices and
/// 0.7–0.8 as long for 256 × 256 (<c>perf --part kernels</c>, table "The push-through solve"; docs/PERFORMANCE.md).
/// Larger, non-CPU or non-float64 inputs go to <c>linalg.cholesky_ex</c>.
/// </remarks>
internal static class SmallCholesky
{
    /// <summary>
    /// Largest order factored here: at 256 this loop took 0.7–0.8 of LAPACK's time in <c>perf --part kernels</c>, against
    /// about half at 128, and LAPACK's blocked potrf gains with the order.
    /// </summary>
    public const int MaxOrder = 256;

    /// <summary>
    /// (L, info) as <c>linalg.cholesky_ex(a)</c>: L (… × n × n, a fresh tensor laid out by columns, as LAPACK's) holds
    /// the lower factor with zeros above the diagonal, and info (…, int32) is 0 where the factorisation succeeded and
    /// otherwise the 1-based order of the first leading minor found not positive definite (a pivot ≤ 0 or NaN), LAPACK's
    /// convention; that matrix's factor is then incomplete. Only the upper triangle of <paramref name="a"/> is read
    /// (LAPACK's uplo = 'U'; <c>linalg.cholesky_ex</c> reads the lower one): the two agree for the symmetric matrices
    /// this is for, and reading A's rows as they are saves a transposed copy (0.3–0.4 ms for fifteen 128 × 128 matrices
    /// in a step of the depth-16 figure-5 net).
    /// </summary>
    public static (Tensor Factor, Tensor Info) Factor(Tensor a)
    {
        if (a.device_type != DeviceType.CPU || a.dtype != ScalarType.Float64 || a.dim() < 2
            || a.size(-1) is var n && (n > MaxOrder || n == 0 || a.size(-2) != n))
            return linalg.cholesky_ex(a);
        // A by rows: for symmetric A its upper triangle, read here, is Aᵀ's, whose rows are the rows of U.
        var upper = empty(a.shape, dtype: ScalarType.Float64).copy_(a);
        long count = upper.numel() / (n * n);
        var info = new int[count];
        using (var storage = upper.storage<double>())
        {
            unsafe
            {
                double* f0 = (double*)storage.data_ptr() + upper.storage_offset();
                for (long b = 0; b < count; b++)
                {
                    double* f = f0 + b * n * n;
                    info[b] = FactorInPlace(f, (int)n);
                    for (int i = 1; i < n; i++) new Span<double>(f + i * n, i).Clear();   // zeros below the diagonal
                }
            }
        }
        return (upper.mT, tensor(info).reshape(a.shape[..^2]));
    }

    /// <summary>
    /// Overwrites the upper triangle of the row-major n × n matrix at <paramref name="f"/> (nothing below the diagonal is
    /// read) with U, A = UᵀU; returns LAPACK's info.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimised from the first call: the loops need SIMD
    private static unsafe int FactorInPlace(double* f, int n)
    {
        int width = Vector<double>.Count;
        int j0 = 0;
        for (; j0 + 4 <= n; j0 += 4)
        {
            for (int j = j0; j < j0 + 4; j++)
                if (FinishRow(f, n, j, j0 + 4) is var failed and > 0) return failed;
            double* r0 = f + (long)j0 * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
            for (int i = j0 + 4; i < n; i++)
            {
                double* ri = f + (long)i * n;
                double u0 = r0[i], u1 = r1[i], u2 = r2[i], u3 = r3[i];
                Vector<double> c0 = new(u0), c1 = new(u1), c2 = new(u2), c3 = new(u3);
                int k = i;
                for (; k + width <= n; k += width)
                {
                    var y = Vector.Load(ri + k);
                    y -= c0 * Vector.Load(r0 + k);
                    y -= c1 * Vector.Load(r1 + k);
                    y -= c2 * Vector.Load(r2 + k);
                    y -= c3 * Vector.Load(r3 + k);
                    Vector.Store(y, ri + k);
                }
                for (; k < n; k++) ri[k] -= u0 * r0[k] + u1 * r1[k] + u2 * r2[k] + u3 * r3[k];
            }
        }
        for (int j = j0; j < n; j++)
            if (FinishRow(f, n, j, n) is var failed and > 0) return failed;
        return 0;
    }

    /// <summary>
    /// Row j of U from its updated row (pivot, then the row right of it divided by the root), and its update of rows
    /// j + 1 … <paramref name="through"/> − 1; returns j + 1 if the pivot is not positive, else 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe int FinishRow(double* f, int n, int j, int through)
    {
        int width = Vector<double>.Count;
        double* rj = f + (long)j * n;
        double pivot = rj[j];
        if (!(pivot > 0)) return j + 1;
        double root = Math.Sqrt(pivot);
        rj[j] = root;
        double inverse = 1.0 / root;
        var scale = new Vector<double>(inverse);
        int k = j + 1;
        for (; k + width <= n; k += width) Vector.Store(Vector.Load(rj + k) * scale, rj + k);
        for (; k < n; k++) rj[k] *= inverse;
        for (int i = j + 1; i < through; i++)
        {
            double* ri = f + (long)i * n;
            double u = rj[i];
            var c = new Vector<double>(u);
            int m = i;
            for (; m + width <= n; m += width) Vector.Store(Vector.Load(ri + m) - c * Vector.Load(rj + m), ri + m);
            for (; m < n; m++) ri[m] -= u * rj[m];
        }
        return 0;
    }
}
