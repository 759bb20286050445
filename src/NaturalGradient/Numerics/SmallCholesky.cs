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
    /// (L, info) as <c>linalg.cholesky_ex(a)</c>: L (… × n × n, laid out by columns, as LAPACK's) holds the lower factor
    /// with zeros above the diagonal, and info (…, int32) is 0 where the factorisation succeeded and otherwise the
    /// 1-based order of the first leading minor found not positive definite (a pivot ≤ 0 or NaN), LAPACK's convention;
    /// that matrix's factor is then incomplete. Only the upper triangle of <paramref name="a"/> is read (LAPACK's
    /// uplo = 'U'; <c>linalg.cholesky_ex</c> reads the lower one): the two agree for the symmetric matrices this is for,
    /// and reading A's rows as they are saves a transposed copy (0.3–0.4 ms for fifteen 128 × 128 matrices in a step of
    /// the depth-16 figure-5 net).
    /// </summary>
    /// <param name="a">… × n × n, symmetric positive definite.</param>
    /// <param name="overwrite">
    /// Factor <paramref name="a"/>'s own storage when it is factored here (float64, CPU, contiguous, n ≤
    /// <see cref="MaxOrder"/>): L is then a view of <paramref name="a"/>, which holds Lᵀ by rows, and no copy of A is
    /// made. For a caller's scratch system that is not read again. Otherwise (false, or an input that goes to LAPACK)
    /// L is a fresh tensor and <paramref name="a"/> is unchanged.
    /// </param>
    public static (Tensor Factor, Tensor Info) Factor(Tensor a, bool overwrite = false)
    {
        if (a.device_type != DeviceType.CPU || a.dtype != ScalarType.Float64 || a.dim() < 2
            || a.size(-1) is var n && (n > MaxOrder || n == 0 || a.size(-2) != n))
            return linalg.cholesky_ex(a);
        // A by rows: for symmetric A its upper triangle, read here, is Aᵀ's, whose rows are the rows of U.
        var upper = overwrite && a.is_contiguous() ? a : empty(a.shape, dtype: ScalarType.Float64).copy_(a);
        long count = upper.numel() / (n * n);
        var info = new int[count];
        unsafe
        {
            double* f0 = HostData.Doubles(upper);
            for (long b = 0; b < count; b++)
            {
                double* f = f0 + b * n * n;
                info[b] = FactorRows(f, (int)n);
                for (int i = 1; i < n; i++) new Span<double>(f + i * n, i).Clear();   // zeros below the diagonal
            }
        }
        return (upper.mT, tensor(info).reshape(a.shape[..^2]));
    }

    /// <summary>
    /// Overwrites the upper triangle of the row-major n × n matrix at <paramref name="f"/> (nothing below the diagonal is
    /// read) with U, A = UᵀU; returns LAPACK's info.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimised from the first call: the loops need SIMD
    internal static unsafe int FactorRows(double* f, int n)
    {
        int j0 = 0;
        for (; j0 + 4 <= n; j0 += 4)
        {
            for (int j = j0; j < j0 + 4; j++)
                if (FinishRow(f, n, j, j0 + 4) is var failed and > 0) return failed;
            double* r0 = f + (long)j0 * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
            int i = j0 + 4;
            for (; i + 4 <= n; i += 4) UpdateFourRows(f + (long)i * n, i, n, r0, r1, r2, r3);
            for (; i < n; i++) UpdateRow(f + (long)i * n, i, n, r0, r1, r2, r3);
        }
        for (int j = j0; j < n; j++)
            if (FinishRow(f, n, j, n) is var failed and > 0) return failed;
        return 0;
    }

    /// <summary>
    /// Rows i … i + 3 (at <paramref name="ra"/> and the three rows after it) take the updates of the panel rows
    /// <paramref name="r0"/> … <paramref name="r3"/> right of their diagonals: y_k −= Σ_p U_pi U_pk. The corner left of
    /// column i + 3 is done entry by entry; from there one pass over the four rows loads each panel vector once for all
    /// four (sixteen fused multiply-adds per eight loads, against four per five row by row).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void UpdateFourRows(double* ra, int i, int n, double* r0, double* r1, double* r2, double* r3)
    {
        int width = Vector<double>.Count;
        double* rb = ra + n, rc = rb + n, rd = rc + n;
        // The corner: columns i + t … i + 2 of row i + t, for t = 0, 1, 2.
        for (int t = 0; t < 3; t++)
        {
            double* rt = ra + (long)t * n;
            int it = i + t;
            double c0 = r0[it], c1 = r1[it], c2 = r2[it], c3 = r3[it];
            for (int k = it; k < i + 3; k++) rt[k] -= c0 * r0[k] + c1 * r1[k] + c2 * r2[k] + c3 * r3[k];
        }
        Vector<double> na0 = new(-r0[i]), na1 = new(-r1[i]), na2 = new(-r2[i]), na3 = new(-r3[i]);
        Vector<double> nb0 = new(-r0[i + 1]), nb1 = new(-r1[i + 1]), nb2 = new(-r2[i + 1]), nb3 = new(-r3[i + 1]);
        Vector<double> nc0 = new(-r0[i + 2]), nc1 = new(-r1[i + 2]), nc2 = new(-r2[i + 2]), nc3 = new(-r3[i + 2]);
        Vector<double> nd0 = new(-r0[i + 3]), nd1 = new(-r1[i + 3]), nd2 = new(-r2[i + 3]), nd3 = new(-r3[i + 3]);
        int kk = i + 3;
        for (; kk + width <= n; kk += width)
        {
            var p0 = Vector.Load(r0 + kk);
            var p1 = Vector.Load(r1 + kk);
            var p2 = Vector.Load(r2 + kk);
            var p3 = Vector.Load(r3 + kk);
            var ya = Vector.Load(ra + kk);
            var yb = Vector.Load(rb + kk);
            var yc = Vector.Load(rc + kk);
            var yd = Vector.Load(rd + kk);
            ya = Vector.FusedMultiplyAdd(na0, p0, ya); yb = Vector.FusedMultiplyAdd(nb0, p0, yb);
            yc = Vector.FusedMultiplyAdd(nc0, p0, yc); yd = Vector.FusedMultiplyAdd(nd0, p0, yd);
            ya = Vector.FusedMultiplyAdd(na1, p1, ya); yb = Vector.FusedMultiplyAdd(nb1, p1, yb);
            yc = Vector.FusedMultiplyAdd(nc1, p1, yc); yd = Vector.FusedMultiplyAdd(nd1, p1, yd);
            ya = Vector.FusedMultiplyAdd(na2, p2, ya); yb = Vector.FusedMultiplyAdd(nb2, p2, yb);
            yc = Vector.FusedMultiplyAdd(nc2, p2, yc); yd = Vector.FusedMultiplyAdd(nd2, p2, yd);
            ya = Vector.FusedMultiplyAdd(na3, p3, ya); yb = Vector.FusedMultiplyAdd(nb3, p3, yb);
            yc = Vector.FusedMultiplyAdd(nc3, p3, yc); yd = Vector.FusedMultiplyAdd(nd3, p3, yd);
            Vector.Store(ya, ra + kk); Vector.Store(yb, rb + kk); Vector.Store(yc, rc + kk); Vector.Store(yd, rd + kk);
        }
        for (int t = 0; t < 4; t++)
        {
            double* rt = ra + (long)t * n;
            int it = i + t;
            double c0 = r0[it], c1 = r1[it], c2 = r2[it], c3 = r3[it];
            for (int k = kk; k < n; k++) rt[k] -= c0 * r0[k] + c1 * r1[k] + c2 * r2[k] + c3 * r3[k];
        }
    }

    /// <summary>Row i (at <paramref name="ri"/>) alone takes the panel's updates, as in <see cref="UpdateFourRows"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void UpdateRow(double* ri, int i, int n, double* r0, double* r1, double* r2, double* r3)
    {
        int width = Vector<double>.Count;
        double u0 = r0[i], u1 = r1[i], u2 = r2[i], u3 = r3[i];
        Vector<double> c0 = new(-u0), c1 = new(-u1), c2 = new(-u2), c3 = new(-u3);
        int k = i;
        for (; k + width <= n; k += width)
        {
            var y = Vector.Load(ri + k);
            y = Vector.FusedMultiplyAdd(c0, Vector.Load(r0 + k), y);
            y = Vector.FusedMultiplyAdd(c1, Vector.Load(r1 + k), y);
            y = Vector.FusedMultiplyAdd(c2, Vector.Load(r2 + k), y);
            y = Vector.FusedMultiplyAdd(c3, Vector.Load(r3 + k), y);
            Vector.Store(y, ri + k);
        }
        for (; k < n; k++) ri[k] -= u0 * r0[k] + u1 * r1[k] + u2 * r2[k] + u3 * r3[k];
    }

    /// <summary>
    /// x ← (UᵀU)⁻¹ x for the factor U that <see cref="FactorRows"/> left in the upper triangle of the row-major n × n
    /// matrix at <paramref name="f"/>: Uᵀy = x by rows (each solved entry subtracts its multiple of row j of U from the
    /// entries after it, one contiguous pass), then U x = y by dot products of U's rows with the entries already solved.
    /// The computation of LAPACK's potrs with uplo = 'U' for one right-hand side.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe void SolveRows(double* f, int n, double* x)
    {
        int width = Vector<double>.Count;
        for (int j = 0; j < n; j++)
        {
            double* rj = f + (long)j * n;
            double yj = x[j] / rj[j];
            x[j] = yj;
            var c = new Vector<double>(-yj);
            int k = j + 1;
            for (; k + width <= n; k += width) Vector.Store(Vector.FusedMultiplyAdd(c, Vector.Load(rj + k), Vector.Load(x + k)), x + k);
            for (; k < n; k++) x[k] -= yj * rj[k];
        }
        for (int i = n - 1; i >= 0; i--)
        {
            double* ri = f + (long)i * n;
            var sum = Vector<double>.Zero;
            int k = i + 1;
            for (; k + width <= n; k += width) sum = Vector.FusedMultiplyAdd(Vector.Load(ri + k), Vector.Load(x + k), sum);
            double dot = Vector.Sum(sum);
            for (; k < n; k++) dot += ri[k] * x[k];
            x[i] = (x[i] - dot) / ri[i];
        }
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
