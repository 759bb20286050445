using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// torch.matmul with its operands' shapes checked on the managed side first. TorchSharp 0.107's native entry point for
/// matmul (THSTensor_matmul) does not catch libtorch's errors, so a shape mismatch there terminates the process instead
/// of throwing (mm, bmm and the other products throw a .NET exception); the library's matmuls go through
/// <see cref="MatMul"/>. A dtype mismatch terminates the process in the same way and is checked as well.
/// </summary>
internal static class CheckedProducts
{
    /// <summary>a · b with matmul's semantics for operands of two or more dimensions (batch dimensions broadcast).</summary>
    /// <exception cref="ArgumentException">
    /// An operand has fewer than two dimensions, a's last dimension differs from b's second-to-last, or the batch
    /// dimensions do not broadcast; the message gives both shapes. The operands' dtypes differ; the message gives both.
    /// </exception>
    public static Tensor MatMul(this Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype)
            throw new ArgumentException($"matrix product of a {a.dtype} and a {b.dtype} operand: matmul needs one dtype");
        long[] sa = a.Sizes(), sb = b.Sizes();
        if (sa.Length < 2 || sb.Length < 2 || sa[^1] != sb[^2] || !BatchDimensionsBroadcast(sa, sb))
            throw new ArgumentException($"matrix product of shapes {ShapeText.Of(sa)} and {ShapeText.Of(sb)}: the operands do not fit (inner dimensions {(sa.Length > 0 ? sa[^1] : 0)} and {(sb.Length > 1 ? sb[^2] : 0)})");
        return a.matmul(b);
    }

    private static bool BatchDimensionsBroadcast(long[] sa, long[] sb)
    {
        for (int i = 3; i <= Math.Min(sa.Length, sb.Length); i++)
        {
            long x = sa[^i], y = sb[^i];
            if (x != y && x != 1 && y != 1) return false;
        }
        return true;
    }

}
