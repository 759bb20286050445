using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// A small rank-one layer's metric block in parameter space, M = w JᵀJ with rows jᵢ = vec(dᵢ āᵢᵀ) (J is n × p,
/// p = out · in'), and its damped solve (M + λI)⁻¹ B: TENGraD's parameter-space side of the push-through identity
/// (seed 000 eq 40–43) for a layer with few parameters, such as the figure-5 nets' 21 × 1 regression head. Both are
/// computed on the calling thread in float64: M and the mean gradient ḡ = w Jᵀ1 by one pass over the examples (jᵢ
/// formed in a p-long scratch row, then M's upper triangle += jᵢ jᵢᵀ by rows), and the solve by
/// <see cref="SmallCholesky.FactorRows"/> and <see cref="SmallCholesky.SolveRows"/>.
/// </summary>
/// <remarks>
/// The tensor-operation form of the same arithmetic (J in float64, one GEMM, M + λI, <c>linalg.cholesky_ex</c>, two
/// triangular solves) takes about eighteen operator calls for a 21-parameter head, each a few microseconds of dispatch
/// against a few thousand multiply-adds of work; that was a large part of TENGraD's step on the depth-1 figure-5 net
/// (docs/PERFORMANCE.md, "TENGraD's parameter-space head"). Larger layers (n p² above <see cref="MaxFormWork"/>, p
/// above <see cref="SmallCholesky.MaxOrder"/>) and other devices keep the tensor operations.
/// </remarks>
internal static class RankOneParameterSystem
{
    /// <summary>Most multiply-adds n · p² that <see cref="Form"/> takes (2²⁰: below a millisecond on one core).</summary>
    public const long MaxFormWork = 1L << 20;

    /// <summary>
    /// Whether <see cref="Form"/> takes D (n × out) and Ā (n × in'): both 2-D float32 or float64 CPU tensors with n rows,
    /// p = out · in' ≤ <see cref="SmallCholesky.MaxOrder"/> and n p² ≤ <see cref="MaxFormWork"/>.
    /// </summary>
    public static bool Applies(Tensor d, Tensor a)
    {
        if (d.dim() != 2 || a.dim() != 2 || d.size(0) != a.size(0) || d.size(0) < 1) return false;
        if (d.device_type != DeviceType.CPU || a.device_type != DeviceType.CPU) return false;
        if (d.dtype is not (ScalarType.Float32 or ScalarType.Float64) || a.dtype is not (ScalarType.Float32 or ScalarType.Float64)) return false;
        long p = d.size(1) * a.size(1);
        return p >= 1 && p <= SmallCholesky.MaxOrder && d.size(0) * p * p <= MaxFormWork;
    }

    /// <summary>
    /// M = w Σᵢ jᵢ jᵢᵀ (p × p, float64, symmetric) and ḡ = w Σᵢ jᵢ (p, float64), jᵢ = vec(dᵢ āᵢᵀ) row-major as W̄
    /// (entry o · in' + c is d_io · ā_ic).
    /// </summary>
    /// <param name="d">D, n × out (the output-gradient rows), as <see cref="Applies"/> requires.</param>
    /// <param name="a">Ā, n × in' (the activation rows with their ones column).</param>
    /// <param name="weight">w, the statistics' weight (1/n for a mean loss).</param>
    /// <exception cref="ArgumentException">Inputs that <see cref="Applies"/> refuses.</exception>
    public static (Tensor Matrix, Tensor MeanGradient) Form(Tensor d, Tensor a, double weight)
    {
        if (!Applies(d, a))
            throw new ArgumentException($"the parameter-space system takes n × out and n × in' float32 or float64 CPU rows with out · in' ≤ {SmallCholesky.MaxOrder} and n (out · in')² ≤ {MaxFormWork}, not {ShapeText.Of(d)} {d.dtype} and {ShapeText.Of(a)} {a.dtype}");
        int n = (int)d.size(0), outputs = (int)d.size(1), inputs = (int)a.size(1), p = outputs * inputs;
        using var scope = NewDisposeScope();
        var dRows = d.is_contiguous() ? d : d.contiguous();
        var aRows = a.is_contiguous() ? a : a.contiguous();
        var matrix = zeros(p, p, dtype: ScalarType.Float64);
        var mean = zeros(p, dtype: ScalarType.Float64);
        var scratch = ArrayPool<double>.Shared.Rent(p + outputs + inputs);
        try
        {
            var dStore = new RowSource(dRows);
            var aStore = new RowSource(aRows);
            unsafe
            {
                double* m0 = HostData.Doubles(matrix);
                double* g0 = HostData.Doubles(mean);
                fixed (double* j = scratch)
                {
                    double* di = j + p, ai = di + outputs;
                    for (int i = 0; i < n; i++)
                    {
                        dStore.Read(i, di, outputs);
                        aStore.Read(i, ai, inputs);
                        for (int o = 0; o < outputs; o++)
                            for (int c = 0; c < inputs; c++)
                                j[o * inputs + c] = di[o] * ai[c];
                        for (int r = 0; r < p; r++) g0[r] += j[r];
                        AddOuterUpper(m0, j, p);
                    }
                }
                for (int r = 0; r < p; r++)
                {
                    g0[r] *= weight;
                    double* mr = m0 + (long)r * p;
                    for (int c = r; c < p; c++)
                    {
                        mr[c] *= weight;
                        m0[(long)c * p + r] = mr[c];
                    }
                }
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(scratch);
        }
        return (scope.MoveToOuter(matrix), scope.MoveToOuter(mean));
    }

    /// <summary>
    /// X = (M + λI)⁻¹ B (p × k, float64) by the Cholesky factor of M + λI (only M's upper triangle read), or null when
    /// the factorisation fails (M + λI not positive definite to float64 precision, or not finite): the caller then takes
    /// <see cref="SafeCholesky.Solve"/>'s fallbacks.
    /// </summary>
    /// <param name="matrix">M, p × p float64 on the CPU, p ≤ <see cref="SmallCholesky.MaxOrder"/>.</param>
    /// <param name="damping">λ.</param>
    /// <param name="rhs">B, p × k float64 on the CPU.</param>
    /// <exception cref="ArgumentException">Other shapes, dtypes or devices.</exception>
    public static Tensor? Solve(Tensor matrix, double damping, Tensor rhs)
    {
        if (!SolveApplies(matrix) || rhs.dim() != 2 || rhs.size(0) != matrix.size(0) || rhs.dtype != ScalarType.Float64 || rhs.device_type != DeviceType.CPU)
            throw new ArgumentException($"the parameter-space solve takes a p × p float64 CPU matrix (p ≤ {SmallCholesky.MaxOrder}) and a p × k float64 CPU right-hand side, not {ShapeText.Of(matrix)} {matrix.dtype} and {ShapeText.Of(rhs)} {rhs.dtype}");
        int p = (int)matrix.size(0), k = (int)rhs.size(1);
        using var scope = NewDisposeScope();
        var m = matrix.is_contiguous() ? matrix : matrix.contiguous();
        // X starts as a copy of Bᵀ (k × p, one right-hand side per row; B itself is never written) and is solved in
        // place, then returned transposed.
        var x = empty(k, p, dtype: ScalarType.Float64).copy_(rhs.t());
        var factor = ArrayPool<double>.Shared.Rent(p * p);
        try
        {
            unsafe
            {
                double* m0 = HostData.Doubles(m);
                double* x0 = HostData.Doubles(x);
                fixed (double* f = factor)
                {
                    for (int r = 0; r < p; r++)
                    {
                        new ReadOnlySpan<double>(m0 + (long)r * p + r, p - r).CopyTo(new Span<double>(f + (long)r * p + r, p - r));
                        f[(long)r * p + r] += damping;
                    }
                    if (SmallCholesky.FactorRows(f, p) != 0) return null;
                    for (int c = 0; c < k; c++) SmallCholesky.SolveRows(f, p, x0 + (long)c * p);
                }
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(factor);
        }
        return scope.MoveToOuter(x.t());
    }

    /// <summary>Whether <see cref="Solve"/> takes <paramref name="matrix"/>: p × p float64 on the CPU, 1 ≤ p ≤ <see cref="SmallCholesky.MaxOrder"/>.</summary>
    public static bool SolveApplies(Tensor matrix) =>
        matrix.dim() == 2 && matrix.size(0) == matrix.size(1) && matrix.size(0) >= 1 && matrix.size(0) <= SmallCholesky.MaxOrder
        && matrix.dtype == ScalarType.Float64 && matrix.device_type == DeviceType.CPU;

    /// <summary>The rows of a contiguous float32 or float64 CPU matrix, read as float64 (the caller keeps the tensor alive).</summary>
    private readonly unsafe struct RowSource
    {
        private readonly void* _start;
        private readonly bool _double;

        public RowSource(Tensor rows)
        {
            _double = rows.dtype == ScalarType.Float64;
            _start = _double ? HostData.Doubles(rows) : HostData.Floats(rows);
        }

        /// <summary>Row <paramref name="i"/> (width <paramref name="width"/>) into <paramref name="target"/>.</summary>
        public void Read(int i, double* target, int width)
        {
            if (_double)
            {
                new ReadOnlySpan<double>((double*)_start + (long)i * width, width).CopyTo(new Span<double>(target, width));
                return;
            }
            float* source = (float*)_start + (long)i * width;
            for (int c = 0; c < width; c++) target[c] = source[c];
        }
    }

    /// <summary>The upper triangle of the row-major p × p matrix at <paramref name="m"/> += j jᵀ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void AddOuterUpper(double* m, double* j, int p)
    {
        int width = Vector<double>.Count;
        for (int r = 0; r < p; r++)
        {
            double jr = j[r];
            var scale = new Vector<double>(jr);
            double* mr = m + (long)r * p;
            int c = r;
            for (; c + width <= p; c += width) Vector.Store(Vector.Load(mr + c) + scale * Vector.Load(j + c), mr + c);
            for (; c < p; c++) mr[c] += jr * j[c];
        }
    }
}
