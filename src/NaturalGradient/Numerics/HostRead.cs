using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>Reading a small float64 or float32 tensor's values on the host, as float64.</summary>
internal static class HostRead
{
    /// <summary>
    /// The values of <paramref name="values"/> (float64 or float32, any shape, row-major) as float64; float32 values are
    /// widened on the host, which is exact (the same values as a float64 conversion in libtorch, without that native
    /// result). A contiguous CPU tensor is copied straight from its memory: TorchSharp's <c>data&lt;double&gt;().ToArray()</c>
    /// takes 3.0 µs for three values, mostly accessor set-up (shape and strides read through native callbacks), this
    /// 0.1 µs (the bench's <c>micro</c> command).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="values"/> is neither float64 nor float32.</exception>
    public static double[] Doubles(Tensor values)
    {
        var dtype = values.dtype;
        if (dtype is not (ScalarType.Float64 or ScalarType.Float32))
            throw new ArgumentException($"expected a float64 or float32 tensor, got {dtype}", nameof(values));
        if (values.device_type != DeviceType.CPU || !values.is_contiguous())
        {
            using var scope = NewDisposeScope();
            return Doubles(values.cpu().contiguous());
        }
        if (dtype == ScalarType.Float64) return MemoryMarshal.Cast<byte, double>(values.bytes).ToArray();
        var singles = MemoryMarshal.Cast<byte, float>(values.bytes);
        var result = new double[singles.Length];
        for (int i = 0; i < singles.Length; i++) result[i] = singles[i];
        return result;
    }
}
