using NaturalGradient.Numerics;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// The diagonal of a layer's metric, diag(M_l) = w Σ gᵢ ∘ gᵢ, and the solve g / (diag + λ).
/// For rank-one layers (Linear, T = 1) it is w (δ∘δ)ᵀ(ā∘ā) without forming per-sample gradients; for index layers
/// (Embedding) it comes from the token indices (<see cref="TokenGradients.SquaredSum"/>, memory O(n T out + p_l)).
/// Other layers form the per-sample gradients: cost O(n p_l); memory O(n p_l).
/// </summary>
public sealed class DiagonalBlock : ICurvatureBlock
{
    private Tensor? _diagonal; // out × in'

    public void Update(LayerStatistics statistics, long step)
    {
        if (statistics.IsRankOne)
        {
            var a = statistics.PairedActivations().squeeze(1);
            var d = statistics.FlatOutputGradients().squeeze(1);
            // w folded into the m × out squares, the smaller operand: no pass over the out × in' product.
            _diagonal = d.square().mul_(statistics.Weight).t().mm(a.square());
        }
        else if (statistics.PairedTokens() is { } tokens)
        {
            _diagonal = TokenGradients.SquaredSum(tokens, statistics.FlatOutputGradients(), statistics.Adapter.InputDim).mul_(statistics.Weight);
        }
        else
        {
            _diagonal = statistics.PerSampleGradients().square().sum(dim: 0).mul(statistics.Weight);
        }
    }

    private Tensor Diagonal => _diagonal ?? throw new InvalidOperationException("the block has no statistics yet: call Update first");

    public Tensor Precondition(Tensor gradient, double damping) => gradient / (Diagonal.InDtype(gradient.dtype) + damping);

    public Tensor Multiply(Tensor v) => v * Diagonal.InDtype(v.dtype);

    public Tensor ToDense() => diag(Diagonal.flatten());

    public double MeanCurvature() => Diagonal.mean().ToDouble();

    public void Dispose() => _diagonal = null;
}
