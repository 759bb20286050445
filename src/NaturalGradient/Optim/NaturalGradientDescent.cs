using NaturalGradient.Capture;
using NaturalGradient.Damping;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Optim;

/// <summary>
/// Natural gradient descent as one object: θ ← θ + u with u = −η · buf, buf ← μ·buf + (M + λI)⁻¹(g + wd·θ)
/// (seed 000 eq 36/39; seed 001 algorithm 1), optional KL trust region, and constant or Levenberg–Marquardt
/// damping driven by ρ = (L(θ + u) − L(θ)) / q(u), q(u) = gᵀu + ½ uᵀMu with the undamped metric M,
/// evaluated on the same batch (Martens 2010's quadratic model; seed 001 eq 30 uses the linear term only).
/// Parameters outside covered layers take the same momentum-SGD step on their plain gradient.
/// </summary>
public sealed class NaturalGradientDescent : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly IDampingPolicy _damping;
    private readonly Dictionary<string, Tensor> _layerMomentum = new();
    private readonly Dictionary<Parameter, Tensor> _plainMomentum = new(ReferenceEqualityComparer.Instance);
    private readonly List<Parameter> _uncovered;

    public NaturalGradientDescent(nn.Module<Tensor, Tensor> model, ILikelihood likelihood, NaturalGradientOptions? options = null)
    {
        Options = (options ?? new NaturalGradientOptions()).Validate();
        _model = model;
        Preconditioner = new NaturalGradientPreconditioner(model, likelihood, Options.Preconditioner);
        LearningRate = Options.LearningRate;
        _damping = Options.DampingSchedule == DampingSchedule.LevenbergMarquardt
            ? new LevenbergMarquardtDamping(Options.Preconditioner.Damping)
            : new ConstantDamping(Options.Preconditioner.Damping);
        // By storage, not by reference: some native modules hand out a new wrapper of the same parameter on every access.
        var covered = Preconditioner.Capture.Layers.SelectMany(l => l.Adapter.Parameters).Select(TensorIdentity.Key).ToHashSet();
        _uncovered = model.parameters().Where(p => p.requires_grad && !covered.Contains(TensorIdentity.Key(p))).ToList();
    }

    public NaturalGradientOptions Options { get; }
    public NaturalGradientPreconditioner Preconditioner { get; }

    /// <summary>Current learning rate η (schedules set it between epochs).</summary>
    public double LearningRate { get; set; }

    /// <summary>The damping the next step will use.</summary>
    public double Damping => _damping.Current;

    /// <summary>One step on the batch (x, y); the metric may come from other inputs (seed 001 §5).</summary>
    public NaturalGradientStepReport Step(Tensor x, Tensor y, Tensor? metricInputs = null, Tensor? metricTargets = null)
    {
        _model.zero_grad();
        Preconditioner.Capture.Clear();
        var output = _model.call(x);
        double loss = Preconditioner.Backward(output, y, metricInputs, metricTargets).ToDouble();
        double lambda = _damping.Current;
        Preconditioner.Damping = lambda;

        using var _ = no_grad();
        var layers = Preconditioner.Layers;
        var g = Preconditioner.GradientMatrices();
        if (Options.WeightDecay > 0)
            g = g.Select((t, i) => t + Options.WeightDecay * layers[i].WeightMatrix()).ToList();
        var delta = Preconditioner.Solve(g, lambda);
        if (!delta.All(d => d.isfinite().all().item<bool>()))
        {
            _damping.Observe(double.NaN);
            return new NaturalGradientStepReport(loss, lambda, double.NaN, double.NaN, Applied: false);
        }

        var u = new List<Tensor>(layers.Count);
        for (int i = 0; i < layers.Count; i++)
            u.Add(MomentumStep(_layerMomentum, layers[i].Name, delta[i]).mul(-LearningRate));

        // Predicted KL of the applied step, ½ uᵀMu, and the quadratic model q(u) = gᵀu + ½uᵀMu.
        var mu = Preconditioner.Curvature.Multiply(layers, u);
        double quad = u.Select((t, i) => (t * mu[i]).sum().ToDouble()).Sum();
        double linear = u.Select((t, i) => (t * g[i]).sum().ToDouble()).Sum();
        if (Options.KlClip is { } kappa && 0.5 * quad > kappa)
        {
            double scale = Math.Sqrt(kappa / (0.5 * quad));
            u = u.Select(t => t * scale).ToList();
            quad *= scale * scale;
            linear *= scale;
        }

        for (int i = 0; i < layers.Count; i++) layers[i].AddToWeights(u[i]);
        foreach (var p in _uncovered) ApplyPlainStep(p);

        double rho = double.NaN;
        if (Options.DampingSchedule == DampingSchedule.LevenbergMarquardt)
        {
            double newLoss = Preconditioner.Likelihood.Loss(_model.call(x), y).ToDouble();
            double predicted = linear + 0.5 * quad;
            // A model that predicts no decrease (e.g. η > 2 on a quadratic) gives no trust: count it as a failure.
            rho = predicted < 0 ? (newLoss - loss) / predicted : double.NaN;
            _damping.Observe(rho);
        }
        return new NaturalGradientStepReport(loss, lambda, rho, 0.5 * quad, Applied: true);
    }

    private Tensor MomentumStep<TKey>(Dictionary<TKey, Tensor> buffers, TKey key, Tensor direction) where TKey : notnull
    {
        if (Options.Momentum == 0) return direction;
        if (buffers.TryGetValue(key, out var buf))
            buf.mul_(Options.Momentum).add_(direction);
        else
            buffers[key] = buf = direction.clone().DetachFromDisposeScope();
        return buf.clone();
    }

    private void ApplyPlainStep(Parameter p)
    {
        if (p.grad is null) return;
        var d = Options.WeightDecay > 0 ? p.grad + Options.WeightDecay * p.detach() : p.grad.clone();
        var step = MomentumStep(_plainMomentum, p, d).mul(-LearningRate);
        if (step.isfinite().all().item<bool>()) p.add_(step);
    }

    public void Dispose()
    {
        Preconditioner.Dispose();
        foreach (var t in _layerMomentum.Values) t.Dispose();
        foreach (var t in _plainMomentum.Values) t.Dispose();
        _layerMomentum.Clear();
        _plainMomentum.Clear();
    }
}

/// <summary>What one natural-gradient step did.</summary>
/// <param name="Loss">Batch loss before the step.</param>
/// <param name="Damping">λ used.</param>
/// <param name="Rho">Levenberg–Marquardt reduction ratio (NaN when not computed).</param>
/// <param name="PredictedKl">½ uᵀMu of the applied step u.</param>
/// <param name="Applied">False when the solve was non-finite and the weights were left unchanged.</param>
public sealed record NaturalGradientStepReport(double Loss, double Damping, double Rho, double PredictedKl, bool Applied);
