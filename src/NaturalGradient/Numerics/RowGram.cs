using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// The Gram K = (ĀĀᵀ) ∘ (DDᵀ) (n × n, seed 000 eq 41) of a small rank-one layer's rows, Ā (n × in') and D (n × out),
/// computed on the calling thread: both row Grams' entries for j ≥ i by SIMD multiply-adds over j (the rows transposed
/// once into a scratch buffer) and their product, K_ij, written to row i; the upper triangle is then mirrored by tiles. The arithmetic is
/// that of the two GEMMs and the product in place that it replaces (sums in the rows' dtype, over the columns in order).
/// </summary>
/// <remarks>
/// For the figure-5 nets' layers (n = 128, in' ≤ 21, out = 20) the two products <c>Ā.mm(Āᵀ)</c> and <c>D.mm(Dᵀ)</c> and
/// the product in place took 53–55 µs on two threads (MKL's threading of a product this small costs more than its
/// arithmetic) and 20–21 µs on one; this loop took 30 µs (<c>perf --part kernels</c>, table "Small-layer kernels";
/// docs/PERFORMANCE.md). The thread count is process-wide, so the library cannot ask for one thread for one product.
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
    public static bool Applies(Tensor a, Tensor d) =>
        AreHostRows(a, d) && a.size(0) * a.size(0) * (a.size(1) + d.size(1)) <= MaxWork;

    /// <summary>Whether <paramref name="a"/> and <paramref name="d"/> are 2-D CPU tensors of one dtype, float32 or float64, with one number of rows n ≥ 1.</summary>
    internal static bool AreHostRows(Tensor a, Tensor d) =>
        a.dim() == 2 && d.dim() == 2 && a.device_type == DeviceType.CPU && d.device_type == DeviceType.CPU
        && a.dtype == d.dtype && a.dtype is (ScalarType.Float32 or ScalarType.Float64)
        && a.size(0) >= 1 && d.size(0) == a.size(0);

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
        var buffer = ArrayPool<T>.Shared.Rent((inputs + outputs + 1) * stride);
        try
        {
            fixed (T* scratch = buffer)
            {
                T* aT = scratch, dT = aT + (long)inputs * stride, row = dT + (long)outputs * stride;
                T* a0 = First<T>(aRows), d0 = First<T>(dRows), k0 = First<T>(gram);
                Transpose(a0, n, inputs, aT, stride);
                Transpose(d0, n, outputs, dT, stride);
                for (int i = 0; i < n; i++)
                {
                    int start = i / width * width;                   // from the vector holding column i
                    RowEntries(a0 + (long)i * inputs, aT, inputs, d0 + (long)i * outputs, dT, outputs, stride, start, row);
                    new ReadOnlySpan<T>(row + i, n - i).CopyTo(new Span<T>(k0 + (long)i * n + i, n - i));
                }
                MirrorUpper(k0, n);
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(buffer);
        }
        return gram;
    }

    /// <summary>Xᵀ (columns × n, rows padded with zeros to <paramref name="stride"/>) from X (n × columns, row-major).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimised from the first call, as every loop here
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
    /// row[j] = (Σ_c āᵢ_c Āᵀ[c, j]) · (Σ_c dᵢ_c Dᵀ[c, j]) = K_ij for j from <paramref name="start"/> (a multiple of the
    /// vector width) to the padded end: four vectors of j at a time (eight independent sums), then one at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RowEntries<T>(T* a, T* aT, int inputs, T* d, T* dT, int outputs, int stride, int start, T* row)
        where T : unmanaged, INumber<T>
    {
        int width = Vector<T>.Count;
        int j = start;
        for (; j + 4 * width <= stride; j += 4 * width)
        {
            Vector<T> a0 = default, a1 = default, a2 = default, a3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
            for (int c = 0; c < inputs; c++)
            {
                var x = new Vector<T>(a[c]);
                T* r = aT + (long)c * stride + j;
                a0 += x * Vector.Load(r);
                a1 += x * Vector.Load(r + width);
                a2 += x * Vector.Load(r + 2 * width);
                a3 += x * Vector.Load(r + 3 * width);
            }
            for (int c = 0; c < outputs; c++)
            {
                var x = new Vector<T>(d[c]);
                T* r = dT + (long)c * stride + j;
                d0 += x * Vector.Load(r);
                d1 += x * Vector.Load(r + width);
                d2 += x * Vector.Load(r + 2 * width);
                d3 += x * Vector.Load(r + 3 * width);
            }
            Vector.Store(a0 * d0, row + j);
            Vector.Store(a1 * d1, row + j + width);
            Vector.Store(a2 * d2, row + j + 2 * width);
            Vector.Store(a3 * d3, row + j + 3 * width);
        }
        for (; j < stride; j += width)
        {
            Vector<T> sa = default, sd = default;
            for (int c = 0; c < inputs; c++) sa += new Vector<T>(a[c]) * Vector.Load(aT + (long)c * stride + j);
            for (int c = 0; c < outputs; c++) sd += new Vector<T>(d[c]) * Vector.Load(dT + (long)c * stride + j);
            Vector.Store(sa * sd, row + j);
        }
    }

    /// <summary>
    /// Copies the upper triangle of the row-major n × n matrix at <paramref name="k"/> onto its lower triangle, by
    /// 16 × 16 tiles (a tile's writes stay within sixteen rows' cache lines instead of striding down whole columns).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void MirrorUpper<T>(T* k, int n) where T : unmanaged
    {
        const int tile = 16;
        for (int i0 = 0; i0 < n; i0 += tile)
            for (int j0 = i0; j0 < n; j0 += tile)
            {
                int iEnd = Math.Min(i0 + tile, n), jEnd = Math.Min(j0 + tile, n);
                for (int i = i0; i < iEnd; i++)
                {
                    T* ki = k + (long)i * n;
                    for (int j = Math.Max(j0, i + 1); j < jEnd; j++) k[(long)j * n + i] = ki[j];
                }
            }
    }

    /// <summary>The first element of a contiguous CPU float32 (T = float) or float64 (T = double) tensor.</summary>
    internal static unsafe T* First<T>(Tensor t) where T : unmanaged =>
        typeof(T) == typeof(float) ? (T*)HostData.Floats(t) : (T*)HostData.Doubles(t);
}
