using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// The Gram K = (ĀĀᵀ) ∘ (DDᵀ) (n × n, seed 000 eq 41) of a small rank-one layer's rows, Ā (n × in') and D (n × out),
/// computed on the calling thread: both row Grams' entries K_ij for j ≥ i by SIMD multiply-adds over j (the rows
/// transposed once into a scratch buffer), their product written to row i and mirrored to column i. The arithmetic is
/// that of the two GEMMs and the product in place that it replaces (sums in the rows' dtype, over the columns in order).
/// </summary>
/// <remarks>
/// For the figure-5 nets' layers (n = 128, in' ≤ 21, out = 20) the two products <c>Ā.mm(Āᵀ)</c> and <c>D.mm(Dᵀ)</c> took
/// 30–50 µs on two threads (MKL's threading of a product this small costs more than its arithmetic) against 8–18 µs on
/// one; this loop takes less than either (<c>perf --part kernels</c>, table "Small-layer kernels"; docs/PERFORMANCE.md).
/// Larger layers (more than <see cref="MaxWork"/> multiply-adds), other dtypes and devices keep the GEMMs.
/// </remarks>
internal static class RowGram
{
    /// <summary>Most multiply-adds n² (in' + out) taken here (2²⁰: at 2²¹, n = 128, in' = 65, out = 64, the GEMMs on two threads were faster).</summary>
    public const long MaxWork = 1L << 20;

    /// <summary>
    /// Whether <see cref="Form"/> takes <paramref name="a"/> (Ā, n × in') and <paramref name="d"/> (D, n × out): 2-D CPU
    /// tensors of one dtype, float32 or float64, with one n ≥ 1 and n² (in' + out) ≤ <see cref="MaxWork"/>.
    /// </summary>
    public static bool Applies(Tensor a, Tensor d)
    {
        if (a.dim() != 2 || d.dim() != 2 || a.device_type != DeviceType.CPU || d.device_type != DeviceType.CPU) return false;
        if (a.dtype != d.dtype || a.dtype is not (ScalarType.Float32 or ScalarType.Float64)) return false;
        long n = a.size(0);
        return n >= 1 && d.size(0) == n && n * n * (a.size(1) + d.size(1)) <= MaxWork;
    }

    /// <summary>K = (ĀĀᵀ) ∘ (DDᵀ), n × n in the rows' dtype, symmetric (both triangles written).</summary>
    /// <param name="a">Ā, n × in', as <see cref="Applies"/> requires (any strides).</param>
    /// <param name="d">D, n × out.</param>
    /// <exception cref="ArgumentException">Inputs that <see cref="Applies"/> refuses.</exception>
    public static Tensor Form(Tensor a, Tensor d)
    {
        if (!Applies(a, d))
            throw new ArgumentException($"the row Gram takes n × in' and n × out CPU rows of one dtype, float32 or float64, with n² (in' + out) ≤ {MaxWork}, not {ShapeText.Of(a)} {a.dtype} and {ShapeText.Of(d)} {d.dtype}");
        return a.dtype == ScalarType.Float32 ? Form<float>(a, d) : Form<double>(a, d);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe Tensor Form<T>(Tensor a, Tensor d) where T : unmanaged, INumber<T>
    {
        int n = (int)a.size(0), inputs = (int)a.size(1), outputs = (int)d.size(1);
        int width = Vector<T>.Count;
        int stride = (n + width - 1) / width * width;               // the transposed rows, padded to whole vectors
        var gram = empty(n, n, dtype: a.dtype);
        using var scope = NewDisposeScope();
        var aRows = a.is_contiguous() ? a : a.contiguous();
        var dRows = d.is_contiguous() ? d : d.contiguous();
        var buffer = ArrayPool<T>.Shared.Rent((inputs + outputs) * stride + 2 * stride);
        try
        {
            fixed (T* scratch = buffer)
            {
                T* aT = scratch, dT = aT + (long)inputs * stride, rowA = dT + (long)outputs * stride, rowD = rowA + stride;
                T* a0 = First<T>(aRows), d0 = First<T>(dRows), k0 = First<T>(gram);
                Transpose(a0, n, inputs, aT, stride);
                Transpose(d0, n, outputs, dT, stride);
                for (int i = 0; i < n; i++)
                {
                    int start = i / width * width;                   // from the vector holding column i
                    RowProducts(a0 + (long)i * inputs, aT, inputs, stride, start, rowA);
                    RowProducts(d0 + (long)i * outputs, dT, outputs, stride, start, rowD);
                    T* ki = k0 + (long)i * n;
                    for (int j = i; j < n; j++)
                    {
                        var kij = rowA[j] * rowD[j];
                        ki[j] = kij;
                        k0[(long)j * n + i] = kij;
                    }
                }
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(buffer);
        }
        return gram;
    }

    /// <summary>Xᵀ (columns × n, rows padded with zeros to <paramref name="stride"/>) from X (n × columns, row-major).</summary>
    internal static unsafe void Transpose<T>(T* x, int n, int columns, T* xT, int stride) where T : unmanaged, INumber<T>
    {
        for (int c = 0; c < columns; c++)
        {
            T* target = xT + (long)c * stride;
            for (int j = 0; j < n; j++) target[j] = x[(long)j * columns + c];
            for (int j = n; j < stride; j++) target[j] = T.Zero;
        }
    }

    /// <summary>
    /// row[j] = Σ_c x_c · Xᵀ[c, j] for j from <paramref name="start"/> (a multiple of the vector width) to the padded end:
    /// four vectors of j at a time (four independent sums), then one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RowProducts<T>(T* x, T* xT, int columns, int stride, int start, T* row) where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        int j = start;
        for (; j + 4 * width <= stride; j += 4 * width)
        {
            Vector<T> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int c = 0; c < columns; c++)
            {
                var xc = new Vector<T>(x[c]);
                T* r = xT + (long)c * stride + j;
                s0 += xc * Vector.Load(r);
                s1 += xc * Vector.Load(r + width);
                s2 += xc * Vector.Load(r + 2 * width);
                s3 += xc * Vector.Load(r + 3 * width);
            }
            Vector.Store(s0, row + j);
            Vector.Store(s1, row + j + width);
            Vector.Store(s2, row + j + 2 * width);
            Vector.Store(s3, row + j + 3 * width);
        }
        for (; j < stride; j += width)
        {
            Vector<T> s = default;
            for (int c = 0; c < columns; c++) s += new Vector<T>(x[c]) * Vector.Load(xT + (long)c * stride + j);
            Vector.Store(s, row + j);
        }
    }

    /// <summary>The first element of a contiguous CPU float32 (T = float) or float64 (T = double) tensor.</summary>
    internal static unsafe T* First<T>(Tensor t) where T : unmanaged =>
        typeof(T) == typeof(float) ? (T*)HostData.Floats(t) : (T*)HostData.Doubles(t);
}
