using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Likelihoods;

/// <summary>Which predictive distribution p(y | x) the network output parameterises (seed 001 §3, appendix 8.2).</summary>
public enum LikelihoodKind
{
    /// <summary>Gaussian with unit variance on the raw output: squared error, ℓ = ½‖r − t‖².</summary>
    Gaussian,
    /// <summary>Independent Bernoulli per output on the logit r: sigmoid + binary cross-entropy.</summary>
    Bernoulli,
    /// <summary>Categorical on the logits r: softmax + cross-entropy; targets are class indices.</summary>
    Categorical,
}

/// <summary>
/// A predictive distribution p(t | r) over targets t given the network output r, used as the negative
/// log-likelihood loss and as the source of the Fisher metric.
/// </summary>
/// <remarks>
/// Conventions (shared/notes/curvature-conventions.md): the loss is the batch mean of per-example NLLs, and
/// the output Fisher H_out(r) = E_t[∇_r ℓ ∇_r ℓᵀ] is what the exact (GGN) Fisher J_rᵀ H_out J_r needs.
/// </remarks>
public interface ILikelihood
{
    LikelihoodKind Kind { get; }

    /// <summary>Mean over the batch of ℓᵢ = −log p(tᵢ | rᵢ) (constants dropped). <paramref name="output"/> is m × o.</summary>
    Tensor Loss(Tensor output, Tensor target);

    /// <summary>Per-example NLL, shape m.</summary>
    Tensor PerExampleLoss(Tensor output, Tensor target);

    /// <summary>Targets drawn from the model's own predictive distribution p(t | r) (detached, same layout as data targets).</summary>
    Tensor SampleTargets(Tensor output, Generator? generator = null);

    /// <summary>The output Fisher H_out(rᵢ) for each example: m × o × o.</summary>
    Tensor OutputFisher(Tensor output);

    /// <summary>A factor Bᵢ with Bᵢ Bᵢᵀ = H_out(rᵢ): m × o × c. Its columns drive the exact (type-2) Fisher.</summary>
    Tensor OutputFisherFactor(Tensor output);

    /// <summary>H_out(rᵢ) vᵢ for each example without forming the matrix: v is m × o, returns m × o.</summary>
    Tensor MultiplyOutputFisher(Tensor output, Tensor v);

    /// <summary>Mean accuracy of the predictions (classification likelihoods), or null where it has no meaning.</summary>
    double? Accuracy(Tensor output, Tensor target);
}

/// <summary>Creates likelihoods by kind.</summary>
public static class Likelihood
{
    public static ILikelihood Create(LikelihoodKind kind) => kind switch
    {
        LikelihoodKind.Gaussian => new GaussianLikelihood(),
        LikelihoodKind.Bernoulli => new BernoulliLikelihood(),
        LikelihoodKind.Categorical => new CategoricalLikelihood(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown likelihood"),
    };
}
