using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>Reading a small float64 tensor's values on the host.</summary>
internal static class HostRead
{
    /// <summary>
    /// The values of <paramref name="values"/> (float64, any shape, row-major). A contiguous CPU tensor is copied straight
    /// from its memory: TorchSharp's <c>data&lt;double&gt;().ToArray()</c> takes 3.0 µs for three values, mostly accessor
    /// set-up (shape and strides read through native callbacks), this 0.1 µs (the bench's <c>micro</c> command).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="values"/> is not float64.</exception>
    public static double[] Doubles(Tensor values)
    {
        if (values.dtype != ScalarType.Float64) throw new ArgumentException($"expected a float64 tensor, got {values.dtype}", nameof(values));
        if (values.device_type != DeviceType.CPU || !values.is_contiguous())
        {
            using var scope = NewDisposeScope();
            return Doubles(values.cpu().contiguous());
        }
        return MemoryMarshal.Cast<byte, double>(values.bytes).ToArray();
    }
}
