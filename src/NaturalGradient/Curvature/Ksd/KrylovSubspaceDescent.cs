using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Ksd;

/// <summary>
/// Krylov subspace descent (Vinyals &amp; Povey 2012; seed 001 casts it, like Hessian-free, as natural gradient). Each
/// step: the gradient g on batch B₁, an orthonormal basis V of span{g, G g, …, G^(k−1) g, d_prev} with G + λI the
/// Gauss-Newton matrix (= the exact Fisher for these likelihoods) of B₁ by matrix-free products
/// (<see cref="GgnVectorProduct"/>), then α* ≈ argmin φ(α) = L_B₂(θ + Vᵀα) + (ρ/2)‖α‖² by BFGS on a second batch B₂
/// (ρ = <see cref="KsdOptions.StepPenalty"/>; V has orthonormal rows, so ‖α‖ = ‖Vᵀα‖ is the step length), and
/// θ ← θ + Vᵀα*.
/// </summary>
/// <remarks>
/// <para>The subspace BFGS starts from H₀ = (V (G + λI) Vᵀ)⁻¹ (the projected Gauss-Newton matrix, which the basis
/// products give for free), so its first trial is the Gauss-Newton step inside the subspace; each iteration then
/// uses an Armijo backtracking line search (at most 20 halvings) and skips pairs with sᵀy ≤ 0. A trial with a
/// non-finite loss counts as a failed line-search point; the parameters end at the best accepted α (θ unchanged if
/// none).</para>
/// <para>Cost per step: one forward-backward on B₁, ≈ 2(k + 1) backward passes for the products, and one
/// forward-backward on B₂ per function evaluation. Memory: (k + 1) flat vectors of all trainable parameters.</para>
/// <para>The parameters are all trainable parameters of the model (not only Linear/Conv2d layers); each must
/// influence the output.</para>
/// </remarks>
public sealed class KrylovSubspaceDescent : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly ILikelihood _likelihood;
    private readonly Parameter[] _parameters;
    private readonly string[] _names;
    private Tensor? _previous;

    public KrylovSubspaceDescent(nn.Module<Tensor, Tensor> model, ILikelihood likelihood, KsdOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(likelihood);
        Options = (options ?? new KsdOptions()).Validate();
        _model = model;
        _likelihood = likelihood;
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToArray();
        _parameters = trainable.Select(p => p.parameter).ToArray();
        _names = trainable.Select(p => $"parameter '{p.name}'").ToArray();
        if (_parameters.Length == 0) throw new ArgumentException("the model has no trainable parameters", nameof(model));
    }

    public KsdOptions Options { get; }

    /// <summary>
    /// The previous applied step, the extra basis vector of the next subspace (flat over the trainable parameters, in
    /// <see cref="Step"/>'s order), as a fresh copy the caller owns; null before the first applied step.
    /// </summary>
    public Tensor? PreviousStep => _previous?.clone().DetachFromDisposeScope();

    /// <summary>The number of trainable parameters: the length of <see cref="PreviousStep"/>.</summary>
    public long ParameterCount => _parameters.Sum(p => p.numel());

    /// <summary>Restores the previous step from <see cref="PreviousStep"/> (null: none), so the next steps are those the saved run would take.</summary>
    /// <exception cref="ArgumentException">Not a vector of the trainable parameters' total length.</exception>
    public void RestorePreviousStep(Tensor? step)
    {
        long count = ParameterCount;
        if (step is not null && (step.dim() != 1 || step.size(0) != count))
            throw new ArgumentException($"the previous step has shape {ShapeText.Of(step)}, but the model has {count} trainable parameters", nameof(step));
        _previous?.Dispose();
        _previous = step?.detach().clone().DetachFromDisposeScope();
    }

    /// <summary>One step: basis from (x, y), subspace minimisation on (subspaceX, subspaceY) — the same batch if null.</summary>
    public KsdStepReport Step(Tensor x, Tensor y, Tensor? subspaceX = null, Tensor? subspaceY = null)
    {
        subspaceX ??= x;
        subspaceY ??= y;
        using var scope = NewDisposeScope();
        var theta0 = Flatten(_parameters.Select(p => (Tensor)p.detach())).clone();

        // Gradient and Gauss-Newton products on B₁.
        Tensor output, g;
        double loss;
        using (enable_grad())
        {
            output = _model.call(x);
            var l = _likelihood.Loss(output, y);
            loss = l.ToDouble();
            g = Flatten(CheckedAutograd.Grad(new[] { l }, _parameters, retainGraph: true, inputNames: _names));
        }
        var extra = Options.IncludePreviousStep && _previous is not null ? new[] { _previous } : Array.Empty<Tensor>();
        Tensor basis, projected;
        using (var product = new GgnVectorProduct(output, _parameters, _likelihood, _names))
            (basis, projected) = KrylovBasis.Build(v => product.Multiply(v, Options.Damping), g, Options.Dimension, extra);
        if (!double.IsFinite(loss) || basis.size(0) == 0)
            return new KsdStepReport(loss, loss, 0, 0, (int)basis.size(0), Applied: false);

        // BFGS on φ(α) = L_B₂(θ₀ + Vᵀα).
        long r = basis.size(0);
        var alpha = zeros(r, dtype: ScalarType.Float64);
        var (phi, grad) = Evaluate(theta0, basis, alpha, subspaceX, subspaceY);
        double phi0 = phi;
        int evaluations = 1, iterations = 0;
        if (!double.IsFinite(phi) || !grad.isfinite().all().item<bool>())
        {
            SetParameters(theta0);
            return new KsdStepReport(loss, phi, 0, evaluations, (int)r, Applied: false);
        }
        var h = InitialInverse(projected, r);
        double grad0 = grad.norm().ToDouble();
        for (; iterations < Options.SubspaceIterations && grad.norm().ToDouble() > Options.SubspaceTolerance * grad0; iterations++)
        {
            var direction = -h.mv(grad);
            double slope = direction.dot(grad).ToDouble();
            if (!(slope < 0)) { h = eye(r, dtype: ScalarType.Float64); direction = -grad; slope = -grad.dot(grad).ToDouble(); }
            double t = 1;
            bool accepted = false;
            Tensor nextAlpha = alpha, nextGrad = grad;
            double nextPhi = phi;
            for (int halving = 0; halving < 20; halving++, t *= 0.5)
            {
                var trial = alpha + t * direction;
                var (trialPhi, trialGrad) = Evaluate(theta0, basis, trial, subspaceX, subspaceY);
                evaluations++;
                if (double.IsFinite(trialPhi) && trialPhi <= phi + 1e-4 * t * slope && trialGrad.isfinite().all().item<bool>())
                {
                    (nextAlpha, nextPhi, nextGrad, accepted) = (trial, trialPhi, trialGrad, true);
                    break;
                }
            }
            if (!accepted) break;
            var s = nextAlpha - alpha;
            var yv = nextGrad - grad;
            double sy = s.dot(yv).ToDouble();
            if (sy > 1e-12 * s.norm().ToDouble() * yv.norm().ToDouble())
            {
                // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
                double rho = 1 / sy;
                var left = eye(r, dtype: ScalarType.Float64) - rho * outer(s, yv);
                h = left.mm(h).mm(left.t()) + rho * outer(s, s);
            }
            (alpha, phi, grad) = (nextAlpha, nextPhi, nextGrad);
        }

        var step = basis.t().mv(alpha);
        SetParameters(theta0 + step);
        _previous?.Dispose();
        _previous = step.detach().clone().DetachFromDisposeScope();
        return new KsdStepReport(loss, phi, iterations, evaluations, (int)r, Applied: true) { SubspaceLossBefore = phi0 };
    }

    /// <summary>H₀ = (V(G + λI)Vᵀ + ρI)⁻¹ when it is positive definite, else I.</summary>
    private Tensor InitialInverse(Tensor projected, long r)
    {
        var (l, info) = linalg.cholesky_ex(projected + Options.StepPenalty * eye(r, dtype: ScalarType.Float64));
        if (info.item<int>() != 0 || !l.isfinite().all().item<bool>()) return eye(r, dtype: ScalarType.Float64);
        return cholesky_inverse(l);
    }

    /// <summary>φ(α) and ∇φ(α) = V ∇L(θ₀ + Vᵀα) on the subspace batch.</summary>
    private (double Value, Tensor Gradient) Evaluate(Tensor theta0, Tensor basis, Tensor alpha, Tensor x, Tensor y)
    {
        SetParameters(theta0 + basis.t().mv(alpha));
        using var grad = enable_grad();
        var l = _likelihood.Loss(_model.call(x), y);
        var g = Flatten(CheckedAutograd.Grad(new[] { l }, _parameters, inputNames: _names)).to_type(ScalarType.Float64);
        double penalty = Options.StepPenalty;
        double value = l.ToDouble() + 0.5 * penalty * alpha.dot(alpha).ToDouble();
        return (value, penalty > 0 ? basis.mv(g) + penalty * alpha : basis.mv(g));
    }

    private void SetParameters(Tensor flat)
    {
        using var _ = no_grad();
        long offset = 0;
        foreach (var p in _parameters)
        {
            long n = p.numel();
            p.copy_(flat.narrow(0, offset, n).view(p.Sizes()).to_type(p.dtype));
            offset += n;
        }
    }

    private static Tensor Flatten(IEnumerable<Tensor> tensors) => cat(tensors.Select(t => t.flatten().to_type(ScalarType.Float64)).ToArray());

    public void Dispose()
    {
        _previous?.Dispose();
        _previous = null;
    }
}

/// <summary>What one Krylov-subspace-descent step did.</summary>
/// <param name="Loss">Loss on the gradient batch before the step.</param>
/// <param name="SubspaceLoss">φ(α*) on the subspace batch after the step.</param>
/// <param name="Iterations">Subspace BFGS iterations taken.</param>
/// <param name="Evaluations">Forward-backward passes on the subspace batch.</param>
/// <param name="BasisSize">r, the basis size actually used.</param>
/// <param name="Applied">False when the weights were left unchanged (non-finite loss or empty basis).</param>
public sealed record KsdStepReport(double Loss, double SubspaceLoss, int Iterations, int Evaluations, int BasisSize, bool Applied)
{
    /// <summary>φ(0), the subspace batch's loss before the step.</summary>
    public double SubspaceLossBefore { get; init; } = double.NaN;
}
