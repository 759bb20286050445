using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// The activation factor A of an index layer (an Embedding, or Embeddings of one table tied together) kept as its
/// diagonal: the layer's āₜ are one-hot rows e_k, so A = (1/m) Σᵢₜ e_k e_kᵀ = diag(token counts)/m is a length-V vector
/// (V = in'), never a V × V matrix. Every operation on A here takes either form: a 1-D tensor is a diagonal factor, a
/// 2-D one a dense factor.
/// </summary>
/// <remarks>
/// With a diagonal A the Kronecker block G ⊗ diag(a) is applied as G⁻¹ ḡ diag(a)⁻¹ (a column scaling), A's eigenbasis is
/// the identity (EKFAC projects by Q_G only) and the memory of the block is O(V + out²) beside the V × out gradient.
/// </remarks>
public static class DiagonalActivation
{
    /// <summary>True when the blocks keep <paramref name="layer"/>'s A as a length-in' vector (Embedding, index-only tied layers).</summary>
    public static bool Applies(ILayerAdapter layer) => layer is ITokenLayerAdapter or TiedLayerAdapter { IsIndexLayer: true };

    /// <summary>The shape of A as the blocks keep it: [in'] for a diagonal A, [in', in'] otherwise.</summary>
    public static long[] Shape(ILayerAdapter layer) =>
        Applies(layer) ? new[] { layer.InputDim } : new[] { layer.InputDim, layer.InputDim };

    /// <summary>The widest dense factor side of a Kronecker block of <paramref name="layer"/>: out for a diagonal A, else max(in', out).</summary>
    public static long DenseFactorSide(ILayerAdapter layer) =>
        Applies(layer) ? layer.OutputDim : Math.Max(layer.InputDim, layer.OutputDim);

    /// <summary>tr A (a diagonal factor: the sum of its entries).</summary>
    internal static Tensor Trace(Tensor a) => a.dim() == 1 ? a.sum() : a.trace();

    /// <summary>V A for a W̄-shaped V (out × in'): a column scaling V diag(a) for a diagonal A, V·A otherwise. Fresh tensor.</summary>
    internal static Tensor RightMultiply(Tensor v, Tensor a) => a.dim() == 1 ? v.mul(a.unsqueeze(0)) : v.mm(a);

    /// <summary>A as a matrix (diag(a) for a diagonal factor). Tests and small layers only.</summary>
    internal static Tensor ToMatrix(Tensor a) => a.dim() == 1 ? diag(a) : a;

    /// <summary>(A + shift I)⁻¹ of a diagonal A: the vector 1 / (a + shift). Fresh tensor.</summary>
    internal static Tensor DampedInverse(Tensor a, double shift) => a.add(shift).reciprocal_();
}
