using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// TENGraD's push-through systems for a batch of layers (seed 000 eq 43 with the mean gradient's right-hand side):
/// (w_k K_k + λ_k I) u_k = c_k·1, K_k the n × n Gram of layer k. Each system is formed, factored and solved in turn on
/// the calling thread while it is in cache: the upper triangle of K_k is read once (float32 or float64) and written
/// scaled into float64 with λ_k on the diagonal, <see cref="SmallCholesky.FactorRows"/> factors it and
/// <see cref="SmallCholesky.SolveRows"/> solves for c_k·1. The arithmetic is float64 throughout, as when w K + λI is formed
/// by tensor operations, factored by <see cref="SmallCholesky.Factor"/> and solved by <see cref="CholeskySolve.Apply"/>;
/// those take one pass over the whole batch per operation (b × n × n float64: 2 MB for the depth-16 figure-5 net,
/// more than a core's L2 cache), this one pass per system.
/// </summary>
internal static class DampedGramSystems
{
    /// <summary>
    /// Whether <see cref="Solve"/> takes <paramref name="grams"/>: all on the CPU, float32 or float64, n × n with one
    /// n, 1 ≤ n ≤ <see cref="SmallCholesky.MaxOrder"/>.
    /// </summary>
    public static bool Applies(IReadOnlyList<Tensor> grams)
    {
        if (grams.Count == 0) return false;
        long n = grams[0].dim() == 2 ? grams[0].size(0) : -1;
        if (n < 1 || n > SmallCholesky.MaxOrder) return false;
        foreach (var g in grams)
            if (g.device_type != DeviceType.CPU || g.dim() != 2 || g.size(0) != n || g.size(1) != n
                || g.dtype is not (ScalarType.Float32 or ScalarType.Float64))
                return false;
        return true;
    }

    /// <summary>
    /// Forms, factors and solves the b systems (w_k K_k + λ_k I) u_k = c_k·1 (shapes and dtypes as
    /// <see cref="Applies"/> requires; only the upper triangles of the Grams are read).
    /// </summary>
    /// <param name="grams">The b Grams K_k, n × n.</param>
    /// <param name="weights">w_k.</param>
    /// <param name="dampings">λ_k.</param>
    /// <param name="c">c_k, the right-hand sides' entries.</param>
    /// <param name="system">
    /// b × n × n float64, contiguous, CPU: receives the factors U_k (w_k K_k + λ_k I = U_kᵀU_k) by rows with zeros below
    /// the diagonal, so that <c>system.mT</c> holds the lower factors as <c>linalg.cholesky_ex</c> lays them out.
    /// </param>
    /// <returns>
    /// Host arrays, computed here (no tensor made and read back). Info (b): LAPACK's info per system (0, or the order of
    /// the first leading minor not positive definite). U (b · n, u_k from entry k · n): u_k, zeros where info ≠ 0.
    /// WeightedRowSum (b): Σᵢ |u_ki| √max(K_k,ii, 0), the push-through rounding bound's sum. OnesKU (b): 1ᵀK_k u_k, from
    /// K_k's row sums.
    /// </returns>
    /// <exception cref="ArgumentException">Grams that <see cref="Applies"/> refuses, arrays of another length than the
    /// Grams, or a <paramref name="system"/> of another shape, dtype or layout.</exception>
    public static (int[] Info, double[] U, double[] WeightedRowSum, double[] OnesKU) Solve(IReadOnlyList<Tensor> grams,
        double[] weights, double[] dampings, double[] c, Tensor system)
    {
        if (!Applies(grams)) throw new ArgumentException("the Grams must be n × n float32 or float64 CPU matrices of one order n ≤ " + SmallCholesky.MaxOrder, nameof(grams));
        int b = grams.Count, n = (int)grams[0].size(0);
        if (weights.Length != b || dampings.Length != b || c.Length != b)
            throw new ArgumentException($"{b} Grams but {weights.Length} weights, {dampings.Length} dampings and {c.Length} right-hand sides");
        if (system.device_type != DeviceType.CPU || system.dtype != ScalarType.Float64 || !system.is_contiguous()
            || system.dim() != 3 || system.size(0) != b || system.size(1) != n || system.size(2) != n)
            throw new ArgumentException($"the system buffer must be a contiguous {b} × {n} × {n} float64 CPU tensor, not {ShapeText.Of(system)} {system.dtype}", nameof(system));
        var info = new int[b];
        var u = new double[(long)b * n];
        var bound = new double[b];
        var onesKu = new double[b];
        var rowSums = new double[n];
        var diagonal = new double[n];
        using var scope = NewDisposeScope();   // contiguous copies of Grams that were not
        unsafe
        {
            double* s0 = HostData.Doubles(system);
            fixed (double* rs = rowSums, kii = diagonal, u0 = u)
            {
                for (int k = 0; k < b; k++)
                {
                    double* f = s0 + (long)k * n * n;
                    var gram = grams[k].is_contiguous() ? grams[k] : grams[k].contiguous();
                    Array.Clear(rowSums);
                    if (gram.dtype == ScalarType.Float32) Form(HostData.Floats(gram), f, n, weights[k], dampings[k], rs, kii);
                    else Form(HostData.Doubles(gram), f, n, weights[k], dampings[k], rs, kii);
                    info[k] = SmallCholesky.FactorRows(f, n);
                    for (int i = 1; i < n; i++) new Span<double>(f + (long)i * n, i).Clear();   // zeros below the diagonal
                    if (info[k] != 0) continue;
                    double* x = u0 + (long)k * n;
                    new Span<double>(x, n).Fill(c[k]);
                    SmallCholesky.SolveRows(f, n, x);
                    double weighted = 0, ones = 0;
                    for (int i = 0; i < n; i++)
                    {
                        weighted += Math.Abs(x[i]) * Math.Sqrt(Math.Max(kii[i], 0));
                        ones += x[i] * rs[i];
                    }
                    bound[k] = weighted;
                    onesKu[k] = ones;
                }
            }
        }
        return (info, u, bound, onesKu);
    }

    /// <summary>
    /// Writes w K + λI into the upper triangle of the row-major n × n float64 matrix at <paramref name="f"/> from the
    /// upper triangle of K at <paramref name="k"/> (row-major, float32): each row's part is widened into its place in
    /// <paramref name="f"/>, then formed there as a float64 K's row (<see cref="FormRow"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Form(float* k, double* f, int n, double w, double damping, double* rowSums, double* diagonal)
    {
        int width = Vector<double>.Count, pair = Vector<float>.Count;
        for (int i = 0; i < n; i++)
        {
            float* ki = k + (long)i * n;
            double* fi = f + (long)i * n;
            int m = i;
            for (; m + pair <= n; m += pair)
            {
                Vector.Widen(Vector.Load(ki + m), out Vector<double> low, out Vector<double> high);
                Vector.Store(low, fi + m);
                Vector.Store(high, fi + m + width);
            }
            for (; m < n; m++) fi[m] = ki[m];
            FormRow(fi, fi, i, n, w, damping, rowSums, diagonal);
        }
    }

    /// <summary><see cref="Form(float*, double*, int, double, double, double*, double*)"/> for a float64 K.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void Form(double* k, double* f, int n, double w, double damping, double* rowSums, double* diagonal)
    {
        for (int i = 0; i < n; i++) FormRow(k + (long)i * n, f + (long)i * n, i, n, w, damping, rowSums, diagonal);
    }

    /// <summary>
    /// Row i of w K + λI right of the diagonal, written to <paramref name="target"/> from K's row at
    /// <paramref name="source"/> (the two may be the same row), with K_ii into <paramref name="diagonal"/> and the row's
    /// entries added to K's row sums (K symmetric: an entry right of the diagonal counts for its row and its column;
    /// the sums start at zero).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void FormRow(double* source, double* target, int i, int n, double w, double damping, double* rowSums, double* diagonal)
    {
        int width = Vector<double>.Count;
        var scale = new Vector<double>(w);
        var total = Vector<double>.Zero;
        double d = source[i];
        int m = i;
        for (; m + width <= n; m += width)
        {
            var v = Vector.Load(source + m);
            Vector.Store(v * scale, target + m);
            Vector.Store(Vector.Load(rowSums + m) + v, rowSums + m);
            total += v;
        }
        double sum = Vector.Sum(total);
        for (; m < n; m++)
        {
            double v = source[m];
            target[m] = w * v;
            rowSums[m] += v;
            sum += v;
        }
        diagonal[i] = d;
        target[i] += damping;
        rowSums[i] += sum - d;   // the loop gave K_ii to row i already; the rest of the row is its entries right of i
    }
}
