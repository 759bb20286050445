using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>Element-type conversion that costs nothing when no conversion is needed.</summary>
internal static class DtypeConversion
{
    /// <summary>
    /// <paramref name="tensor"/> itself when it already has <paramref name="dtype"/>, else <c>to_type(dtype)</c> (a new
    /// tensor in the current dispose scope). libtorch's conversion to the same dtype also returns the same storage, so
    /// the two agree on aliasing; this one skips the native call and the new handle. The caller must not dispose the
    /// result separately from <paramref name="tensor"/>.
    /// </summary>
    public static Tensor InDtype(this Tensor tensor, ScalarType dtype) => tensor.dtype == dtype ? tensor : tensor.to_type(dtype);
}
