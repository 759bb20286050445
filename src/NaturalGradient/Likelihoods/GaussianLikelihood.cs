using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Likelihoods;

/// <summary>
/// Gaussian p(t | r) = N(r, σ² I). ℓ = ‖r − t‖² / (2σ²); H_out = I / σ² (seed 001 eq 15–16).
/// </summary>
/// <remarks>TorchSharp's MSELoss (mean over outputs, no ½) differs from this loss by the factor 2/o.</remarks>
public sealed class GaussianLikelihood : ILikelihood
{
    /// <param name="sigma">Standard deviation σ of the observation noise; default 1.</param>
    public GaussianLikelihood(double sigma = 1.0)
    {
        if (!(sigma > 0) || double.IsInfinity(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be a finite number > 0");
        Sigma = sigma;
    }

    public double Sigma { get; }
    public LikelihoodKind Kind => LikelihoodKind.Gaussian;

    public Tensor PerExampleLoss(Tensor output, Tensor target) =>
        (output - target).square().sum(1).mul(0.5 / (Sigma * Sigma));

    public Tensor Loss(Tensor output, Tensor target) => PerExampleLoss(output, target).mean();

    public Tensor SampleTargets(Tensor output, Generator? generator = null)
    {
        using var _ = no_grad();
        return output.detach() + Sigma * randn(output.shape, dtype: output.dtype, device: output.device, generator: generator);
    }

    public Tensor OutputFisher(Tensor output)
    {
        long m = output.shape[0], o = output.shape[1];
        return eye(o, dtype: output.dtype, device: output.device).div(Sigma * Sigma).expand(m, o, o).contiguous();
    }

    public Tensor OutputFisherFactor(Tensor output)
    {
        long m = output.shape[0], o = output.shape[1];
        return eye(o, dtype: output.dtype, device: output.device).div(Sigma).expand(m, o, o).contiguous();
    }

    public Tensor MultiplyOutputFisher(Tensor output, Tensor v) => v.div(Sigma * Sigma);

    public double? Accuracy(Tensor output, Tensor target) => null;
}
