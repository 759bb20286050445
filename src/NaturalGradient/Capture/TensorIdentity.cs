using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// Which tensors are the same parameter. TorchSharp hands out a new .NET wrapper (and handle) for the same parameter on
/// every access to some native modules' properties (Embedding.weight, for one), so neither reference equality nor
/// <see cref="Tensor.Handle"/> identifies a tensor; its storage address, offset and shape do.
/// </summary>
public static class TensorIdentity
{
    /// <summary>A key equal for two wrappers of the same tensor (same storage, offset and shape).</summary>
    /// <remarks>A sparse tensor has no storage (TorchSharp 0.107's native storage accessor, THSStorage_data_ptr, does
    /// not catch libtorch's error, so asking for it would terminate the process): it is keyed by its handle.</remarks>
    public static string Key(Tensor t) => $"{StorageAddress(t)}:{t.storage_offset()}:{string.Join(",", t.Sizes())}";

    /// <summary>
    /// The address of <paramref name="t"/>'s storage, shared by every view of it (its handle for a sparse tensor or a
    /// dtype without a storage accessor here, which then matches no other tensor).
    /// </summary>
    internal static IntPtr StorageAddress(Tensor t) => t.is_sparse ? t.Handle : t.dtype switch
    {
        ScalarType.Float32 => Address(t.storage<float>()),
        ScalarType.Float64 => Address(t.storage<double>()),
        ScalarType.Float16 => Address(t.storage<Half>()),
        ScalarType.BFloat16 => Address(t.storage<BFloat16>()),
        ScalarType.Int64 => Address(t.storage<long>()),
        ScalarType.Int32 => Address(t.storage<int>()),
        _ => t.Handle,
    };

    private static IntPtr Address<T>(Storage<T> storage) where T : unmanaged
    {
        using (storage) return storage.data_ptr();
    }
}
