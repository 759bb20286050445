using static TorchSharp.torch;

namespace NaturalGradient;

/// <summary>A tensor's shape read dimension by dimension.</summary>
internal static class TensorSizes
{
    /// <summary>
    /// The same array as <c>Tensor.shape</c>, from <c>dim()</c> and one <c>size(i)</c> per dimension. TorchSharp's
    /// <c>shape</c> fills a pinned array through a callback from native code: 1.4 µs for a 3-D tensor against 0.1 µs
    /// (<c>dotnet run -c Release --project bench/NaturalGradient.Bench -- micro</c>, bench/results/micro-2026-11-30-1622-shape-and-host-read.md),
    /// and the step reads shapes many times per layer.
    /// </summary>
    public static long[] Sizes(this Tensor t)
    {
        var sizes = new long[t.dim()];
        for (int i = 0; i < sizes.Length; i++) sizes[i] = t.size(i);
        return sizes;
    }
}
