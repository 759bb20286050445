using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Likelihoods;

/// <summary>
/// Categorical on logits r: π = softmax(r), ℓ = −log π_t (cross-entropy); H_out = diag(π) − ππᵀ
/// (seed 001 eq 20–21). Targets are class indices (int64, shape m).
/// </summary>
public sealed class CategoricalLikelihood : ILikelihood
{
    public LikelihoodKind Kind => LikelihoodKind.Categorical;

    /// <exception cref="TargetShapeException">The target is not m integer class indices for the m × o output.</exception>
    public Tensor PerExampleLoss(Tensor output, Tensor target)
    {
        TargetShape.RequireClassIndices(output, target);
        return TargetShape.ClassIndexed(output, () => nn.functional.cross_entropy(output, target.to_type(ScalarType.Int64), reduction: nn.Reduction.None));
    }

    /// <exception cref="TargetShapeException">The target is not m integer class indices for the m × o output.</exception>
    public Tensor Loss(Tensor output, Tensor target)
    {
        TargetShape.RequireClassIndices(output, target);
        return TargetShape.ClassIndexed(output, () => nn.functional.cross_entropy(output, target.to_type(ScalarType.Int64)));
    }

    public Tensor SampleTargets(Tensor output, Generator? generator = null)
    {
        using var _ = no_grad();
        return multinomial(softmax(output.detach(), 1), 1, true, generator).squeeze(1);
    }

    public Tensor OutputFisher(Tensor output)
    {
        var pi = softmax(output.detach(), 1);
        return diag_embed(pi) - pi.unsqueeze(2) * pi.unsqueeze(1);
    }

    /// <remarks>B = diag(√π) − π √πᵀ gives B Bᵀ = diag(π) − ππᵀ because √πᵀ√π = 1.</remarks>
    public Tensor OutputFisherFactor(Tensor output)
    {
        var pi = softmax(output.detach(), 1);
        var root = pi.sqrt();
        return diag_embed(root) - pi.unsqueeze(2) * root.unsqueeze(1);
    }

    public Tensor MultiplyOutputFisher(Tensor output, Tensor v)
    {
        var pi = softmax(output.detach(), 1);
        return pi * v - pi * (pi * v).sum(1, keepdim: true);
    }

    public double? Accuracy(Tensor output, Tensor target)
    {
        TargetShape.RequireClassIndices(output, target);
        using var _ = no_grad();
        return output.argmax(1).eq(target).to_type(ScalarType.Float64).mean().ToDouble();
    }
}
