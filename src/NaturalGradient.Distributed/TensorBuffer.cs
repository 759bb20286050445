using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Distributed;

/// <summary>The memory of a tensor as MPI sees it: its data pointer, element count and MPI datatype.</summary>
internal static class TensorBuffer
{
    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="tensor"/> is a contiguous CPU float32/float64/int64 tensor.</summary>
    public static void Check(Tensor tensor, string operation)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.device_type != DeviceType.CPU)
            throw new ArgumentException($"{operation}: the tensor is on {tensor.device}; MPI collectives here take CPU tensors", nameof(tensor));
        if (!tensor.is_contiguous())
            throw new ArgumentException($"{operation}: the tensor ({string.Join("×", tensor.shape)}) is not contiguous; call .contiguous() first", nameof(tensor));
        if (tensor.dtype is not (ScalarType.Float32 or ScalarType.Float64 or ScalarType.Int64))
            throw new ArgumentException($"{operation}: dtype {tensor.dtype} is not supported (float32, float64, int64)", nameof(tensor));
    }

    /// <summary>Address of the tensor's first element (the storage is shared, nothing is copied).</summary>
    public static IntPtr Pointer(Tensor tensor) => THSTensor_data(tensor.Handle);

    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);
}
