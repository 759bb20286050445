using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>A tensor shape as messages print it: [8, 1].</summary>
internal static class ShapeText
{
    public static string Of(long[] shape) => "[" + string.Join(", ", shape) + "]";

    public static string Of(Tensor t) => Of(t.Sizes());
}
