using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Likelihoods;

/// <summary>
/// Gaussian p(t | r) = N(r, Σ). With the default Σ = σ²I: ℓ = ‖r − t‖² / (2σ²) and H_out = I / σ²
/// (seed 001 eq 15–16). With a full covariance Σ: ℓ = ½ (r − t)ᵀ Σ⁻¹ (r − t) and H_out = Σ⁻¹.
/// </summary>
/// <remarks>TorchSharp's MSELoss (mean over outputs, no ½) differs from this loss by the factor 2/o.</remarks>
public sealed class GaussianLikelihood : ILikelihood
{
    private readonly Tensor? _precision;      // Σ⁻¹ (o × o)
    private readonly Tensor? _choleskyFactor; // L with L Lᵀ = Σ
    private readonly Tensor? _precisionFactor; // L⁻ᵀ, with L⁻ᵀ L⁻¹ = Σ⁻¹

    /// <param name="sigma">Standard deviation σ of isotropic observation noise; default 1.</param>
    public GaussianLikelihood(double sigma = 1.0)
    {
        if (!(sigma > 0) || double.IsInfinity(sigma))
            throw new ArgumentOutOfRangeException(nameof(sigma), sigma, "sigma must be a finite number > 0");
        Sigma = sigma;
    }

    /// <param name="covariance">A symmetric positive definite o × o noise covariance Σ.</param>
    public GaussianLikelihood(Tensor covariance)
    {
        if (covariance.dim() != 2 || covariance.size(0) != covariance.size(1))
            throw new ArgumentException("covariance must be a square matrix", nameof(covariance));
        Sigma = double.NaN;
        var (l, info) = linalg.cholesky_ex(covariance);
        if (info.item<int>() != 0)
            throw new ArgumentException("covariance must be symmetric positive definite", nameof(covariance));
        _choleskyFactor = l.detach().clone().DetachFromDisposeScope();
        _precision = linalg.inv(covariance).detach().DetachFromDisposeScope();
        _precisionFactor = linalg.inv(l).t().contiguous().DetachFromDisposeScope();
    }

    /// <summary>σ of the isotropic form; NaN when a full covariance was given.</summary>
    public double Sigma { get; }
    public LikelihoodKind Kind => LikelihoodKind.Gaussian;

    /// <exception cref="TargetShapeException">The target's shape differs from the output's (m × o).</exception>
    public Tensor PerExampleLoss(Tensor output, Tensor target)
    {
        TargetShape.RequireSame("Gaussian", output, target);
        var diff = output - target;
        if (_precision is null) return diff.square().sum(1).mul(0.5 / (Sigma * Sigma));
        return (diff.mm(_precision.to_type(diff.dtype)) * diff).sum(1).mul(0.5);
    }

    public Tensor Loss(Tensor output, Tensor target) => PerExampleLoss(output, target).mean();

    public Tensor SampleTargets(Tensor output, Generator? generator = null)
    {
        using var _ = no_grad();
        var noise = randn(output.Sizes(), dtype: output.dtype, device: output.device, generator: generator);
        return _choleskyFactor is null
            ? output.detach() + Sigma * noise
            : output.detach() + noise.mm(_choleskyFactor.to_type(output.dtype).t());
    }

    public Tensor OutputFisher(Tensor output)
    {
        long m = output.size(0), o = output.size(1);
        var h = _precision?.to_type(output.dtype) ?? eye(o, dtype: output.dtype, device: output.device).div(Sigma * Sigma);
        return h.expand(m, o, o).contiguous();
    }

    public Tensor OutputFisherFactor(Tensor output)
    {
        long m = output.size(0), o = output.size(1);
        var b = _precisionFactor?.to_type(output.dtype) ?? eye(o, dtype: output.dtype, device: output.device).div(Sigma);
        return b.expand(m, o, o).contiguous();
    }

    public Tensor MultiplyOutputFisher(Tensor output, Tensor v) =>
        _precision is null ? v.div(Sigma * Sigma) : v.mm(_precision.to_type(v.dtype));

    public double? Accuracy(Tensor output, Tensor target) => null;
}
