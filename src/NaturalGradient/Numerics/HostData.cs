using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Pointers to the elements of contiguous CPU tensors, for the kernels that run on the calling thread
/// (<see cref="SmallCholesky"/>, <see cref="DampedGramSystems"/>, <see cref="RankOneParameterSystem"/>). Taken through
/// <c>Tensor.bytes</c> (a few attribute reads and the data pointer, which includes the storage offset): TorchSharp's
/// <c>Tensor.storage&lt;T&gt;()</c> converts the tensor with <c>to_type</c> on every call, an operator dispatch and a new
/// tensor handle, several per step on the figure-5 nets.
/// </summary>
/// <remarks>The pointer is valid while the tensor is alive and not resized; the caller keeps the tensor referenced.</remarks>
internal static unsafe class HostData
{
    /// <summary>The first element of <paramref name="t"/> (contiguous, CPU, float64).</summary>
    /// <exception cref="ArgumentException">Another dtype.</exception>
    /// <exception cref="InvalidOperationException">A tensor that is not contiguous or not on the CPU (TorchSharp's message).</exception>
    public static double* Doubles(Tensor t) => (double*)First(t, ScalarType.Float64);

    /// <summary>The first element of <paramref name="t"/> (contiguous, CPU, float32).</summary>
    /// <exception cref="ArgumentException">Another dtype.</exception>
    /// <exception cref="InvalidOperationException">A tensor that is not contiguous or not on the CPU (TorchSharp's message).</exception>
    public static float* Floats(Tensor t) => (float*)First(t, ScalarType.Float32);

    private static void* First(Tensor t, ScalarType dtype)
    {
        if (t.dtype != dtype) throw new ArgumentException($"expected a {dtype} tensor, not {t.dtype}", nameof(t));
        return Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
    }
}
