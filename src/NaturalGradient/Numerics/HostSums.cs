using System.Numerics;
using System.Runtime.CompilerServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Sums of small CPU tensors computed on the calling thread in float64, for the statistics guard
/// (<see cref="FiniteGuard.StatisticsBound"/>): at the figure-5 nets' sizes (128 × 21 activations) one operator call,
/// a few microseconds of dispatch, costs more than the sum, and the guard made two per layer and step plus a stack
/// and a read. A NaN or ±∞ entry makes the result non-finite, as the tensor reductions do.
/// </summary>
internal static class HostSums
{
    /// <summary>Most entries summed here (ATen's grain size, below which its reductions run serially anyway).</summary>
    public const long MaxEntries = 32768;

    /// <summary>Whether <paramref name="x"/> is summed here: float32 or float64, on the CPU, contiguous, at most <see cref="MaxEntries"/> entries.</summary>
    public static bool Applies(Tensor x) =>
        x.dtype is ScalarType.Float32 or ScalarType.Float64 && x.device_type == DeviceType.CPU && x.numel() <= MaxEntries && x.is_contiguous();

    /// <summary>Σ xᵢ² in float64 (the float32 entries widened exactly), when <see cref="Applies"/>.</summary>
    public static bool TrySquaredNorm(Tensor x, out double value) => Try(x, squares: true, out value);

    /// <summary>Σ xᵢ in float64, when <see cref="Applies"/>.</summary>
    public static bool TrySum(Tensor x, out double value) => Try(x, squares: false, out value);

    private static unsafe bool Try(Tensor x, bool squares, out double value)
    {
        value = 0;
        if (!Applies(x)) return false;
        int n = (int)x.numel();
        if (n == 0) return true;
        value = x.dtype == ScalarType.Float64 ? Sum(HostData.Doubles(x), n, squares) : Sum(HostData.Floats(x), n, squares);
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double Sum(double* x, int n, bool squares)
    {
        int width = Vector<double>.Count, i = 0;
        var total = Vector<double>.Zero;
        for (; i + width <= n; i += width)
        {
            var v = Vector.Load(x + i);
            total += squares ? v * v : v;
        }
        double sum = Vector.Sum(total);
        for (; i < n; i++) sum += squares ? x[i] * x[i] : x[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double Sum(float* x, int n, bool squares)
    {
        int width = Vector<float>.Count, i = 0;
        Vector<double> total = Vector<double>.Zero;
        for (; i + width <= n; i += width)
        {
            Vector.Widen(Vector.Load(x + i), out Vector<double> low, out Vector<double> high);
            total += squares ? low * low + high * high : low + high;
        }
        double sum = Vector.Sum(total);
        for (; i < n; i++) sum += squares ? (double)x[i] * x[i] : x[i];
        return sum;
    }
}
