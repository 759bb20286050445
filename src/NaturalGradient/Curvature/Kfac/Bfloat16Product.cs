using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// Matrix products by bfloat16 GEMMs for <see cref="KfacInversePrecision.Bfloat16"/>: the fixed operand (an inverse or
/// an eigenbasis) is kept as a bfloat16 copy, the other is rounded to bfloat16 when it is not already, and the kernel
/// accumulates in float32 and rounds its result to bfloat16 (callers convert the final result back to float32).
/// </summary>
internal static class Bfloat16Product
{
    /// <summary>A bfloat16 copy of <paramref name="matrix"/>, detached from every dispose scope (the caller owns it).</summary>
    public static Tensor Copy(Tensor matrix)
    {
        using var scope = NewDisposeScope();
        return matrix.to_type(ScalarType.BFloat16).DetachFromDisposeScope();
    }

    /// <summary>x · y (… × k times k × n) as a bfloat16 tensor; an operand not already bfloat16 is rounded to it first.</summary>
    public static Tensor Of(Tensor x, Tensor y) => Low(x).MatMul(Low(y));

    /// <summary>x in bfloat16 (x itself when it already is).</summary>
    public static Tensor Low(Tensor x) => x.dtype == ScalarType.BFloat16 ? x : x.to_type(ScalarType.BFloat16);
}
