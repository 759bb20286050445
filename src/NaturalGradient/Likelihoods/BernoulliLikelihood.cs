using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Likelihoods;

/// <summary>
/// Independent Bernoulli outputs on logits r: p = σ(r), ℓ = BCE(σ(r), t) summed over outputs;
/// H_out = diag(p(1 − p)) (seed 001 eq 17–19).
/// </summary>
public sealed class BernoulliLikelihood : ILikelihood
{
    public LikelihoodKind Kind => LikelihoodKind.Bernoulli;

    /// <exception cref="TargetShapeException">The target's shape differs from the output's (m × o).</exception>
    public Tensor PerExampleLoss(Tensor output, Tensor target)
    {
        TargetShape.RequireSame("Bernoulli", output, target);
        return nn.functional.binary_cross_entropy_with_logits(output, target.to_type(output.dtype), reduction: nn.Reduction.None).sum(1);
    }

    public Tensor Loss(Tensor output, Tensor target) => PerExampleLoss(output, target).mean();

    public Tensor SampleTargets(Tensor output, Generator? generator = null)
    {
        using var _ = no_grad();
        return bernoulli(sigmoid(output.detach()), generator: generator);
    }

    private static Tensor Variance(Tensor output)
    {
        var p = sigmoid(output.detach());
        return p * (1 - p);
    }

    public Tensor OutputFisher(Tensor output) => diag_embed(Variance(output));

    public Tensor OutputFisherFactor(Tensor output) => diag_embed(Variance(output).sqrt());

    public Tensor MultiplyOutputFisher(Tensor output, Tensor v) => Variance(output) * v;

    public double? Accuracy(Tensor output, Tensor target)
    {
        TargetShape.RequireSame("Bernoulli", output, target);
        using var _ = no_grad();
        return output.gt(0).to_type(ScalarType.Float64).eq(target.to_type(ScalarType.Float64))
            .to_type(ScalarType.Float64).mean().ToDouble();
    }
}
