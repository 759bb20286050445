using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Δ = Jᵀu = (D ∘ u1ᵀ)ᵀĀ (out × in', seed 000 eq 43) for a small rank-one layer's rows, Ā (n × in') and D (n × out),
/// and a host vector u, with ‖Δ‖², computed on the calling thread: the rows transposed once into a scratch buffer,
/// then for each output o the products uᵢ d_io (one vector over i) and their dot products with every column of Ā (SIMD
/// over i). Sums are in the rows' dtype, as in the product <c>Dᵀ.mul(u).mm(Ā)</c> it replaces; ‖Δ‖² is summed in float64.
/// </summary>
/// <remarks>
/// On the figure-5 nets (n = 128, out = 20, in' ≤ 21) the tensor form — u made a tensor, the product with Dᵀ, the GEMM
/// on two threads, the norm and its read — took 38–42 µs for about 50,000 multiply-adds, this loop 10 µs
/// (<c>perf --part kernels</c>, table "Small-layer kernels"; docs/PERFORMANCE.md). Larger layers (more than
/// <see cref="MaxWork"/> multiply-adds), other dtypes and devices keep the tensor form.
/// </remarks>
internal static class RowTransposeProduct
{
    /// <summary>Most multiply-adds n · out · in' taken here (2¹⁷: at n = 256, out = 32, in' = 33 the tensor form was as fast).</summary>
    public const long MaxWork = 1L << 17;

    /// <summary>
    /// Whether <see cref="Multiply"/> takes <paramref name="d"/> (D, n × out) and <paramref name="a"/> (Ā, n × in'):
    /// 2-D CPU tensors of one dtype, float32 or float64, with one n ≥ 1 and n · out · in' ≤ <see cref="MaxWork"/>.
    /// </summary>
    public static bool Applies(Tensor d, Tensor a) =>
        RowGram.AreHostRows(a, d) && a.size(0) * d.size(1) * a.size(1) <= MaxWork;

    /// <summary>Δ = (D ∘ u1ᵀ)ᵀĀ, out × in' in the rows' dtype (u rounded to it), and ‖Δ‖² (float64, from Δ's entries).</summary>
    /// <param name="d">D, n × out, as <see cref="Applies"/> requires (any strides).</param>
    /// <param name="a">Ā, n × in'.</param>
    /// <param name="u">u, n entries.</param>
    /// <exception cref="ArgumentException">Inputs that <see cref="Applies"/> refuses, or u of another length than n.</exception>
    public static (Tensor Delta, double SquaredNorm) Multiply(Tensor d, Tensor a, ReadOnlySpan<double> u)
    {
        if (!Applies(d, a))
            throw new ArgumentException($"the row transpose product takes n × out and n × in' CPU rows of one dtype, float32 or float64, with n · out · in' ≤ {MaxWork}, not {ShapeText.Of(d)} {d.dtype} and {ShapeText.Of(a)} {a.dtype}");
        if (u.Length != a.size(0)) throw new ArgumentException($"u has {u.Length} entries for {a.size(0)} rows", nameof(u));
        return a.dtype == ScalarType.Float32 ? Multiply<float>(d, a, u) : Multiply<double>(d, a, u);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe (Tensor, double) Multiply<T>(Tensor d, Tensor a, ReadOnlySpan<double> u) where T : unmanaged, INumber<T>
    {
        int n = (int)a.size(0), inputs = (int)a.size(1), outputs = (int)d.size(1);
        int width = Vector<T>.Count;
        int stride = (n + width - 1) / width * width;                // the transposed rows, padded to whole vectors
        var delta = empty(outputs, inputs, dtype: a.dtype);
        double squares = 0;
        using var scope = NewDisposeScope();
        var aRows = a.is_contiguous() ? a : a.contiguous();
        var dRows = d.is_contiguous() ? d : d.contiguous();
        var buffer = ArrayPool<T>.Shared.Rent((inputs + 2) * stride);
        try
        {
            fixed (T* scratch = buffer)
            {
                T* aT = scratch, uT = aT + (long)inputs * stride, weighted = uT + stride;
                T* a0 = RowGram.First<T>(aRows), d0 = RowGram.First<T>(dRows), delta0 = RowGram.First<T>(delta);
                RowGram.Transpose(a0, n, inputs, aT, stride);
                for (int i = 0; i < n; i++) uT[i] = T.CreateTruncating(u[i]);
                for (int i = n; i < stride; i++) uT[i] = T.Zero;
                for (int o = 0; o < outputs; o++)
                {
                    for (int i = 0; i < n; i++) weighted[i] = uT[i] * d0[(long)i * outputs + o];      // uᵢ d_io
                    for (int i = n; i < stride; i++) weighted[i] = T.Zero;
                    T* row = delta0 + (long)o * inputs;
                    for (int c = 0; c < inputs; c++)
                    {
                        var value = Dot(weighted, aT + (long)c * stride, stride);
                        row[c] = value;
                        double v = double.CreateTruncating(value);
                        squares += v * v;
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(buffer);
        }
        return (delta, squares);
    }

    /// <summary>Σᵢ xᵢ yᵢ over <paramref name="length"/> entries (a multiple of the vector width), two vectors at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe T Dot<T>(T* x, T* y, int length) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        Vector<T> s0 = default, s1 = default;
        int i = 0;
        for (; i + 2 * width <= length; i += 2 * width)
        {
            s0 += Vector.Load(x + i) * Vector.Load(y + i);
            s1 += Vector.Load(x + i + width) * Vector.Load(y + i + width);
        }
        for (; i < length; i += width) s0 += Vector.Load(x + i) * Vector.Load(y + i);
        return Vector.Sum(s0 + s1);
    }
}
