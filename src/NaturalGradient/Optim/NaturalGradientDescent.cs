using NaturalGradient.Capture;
using NaturalGradient.Damping;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
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
public sealed partial class NaturalGradientDescent : IDisposable
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
        var covered = new HashSet<Parameter>(Preconditioner.Capture.Layers.SelectMany(l => l.Adapter.Parameters), ReferenceEqualityComparer.Instance);
        _uncovered = model.parameters().Where(p => p.requires_grad && !covered.Contains(p)).ToList();
    }

    public NaturalGradientOptions Options { get; }
    public NaturalGradientPreconditioner Preconditioner { get; }

    /// <summary>Current learning rate η (schedules set it between epochs).</summary>
    public double LearningRate { get; set; }

    /// <summary>The damping the next step will use.</summary>
    public double Damping => _damping.Current;

    /// <summary>One step on the batch (x, y); the metric may come from other inputs (seed 001 §5).</summary>
    /// <remarks>
    /// Work per step: one forward and one backward pass (the empirical Fisher takes its per-example output gradients
    /// from that backward), the curvature's update and solve, and one host read that returns the loss together with
    /// the finiteness of every direction (one fused scalar). The predicted KL ½uᵀMu and the quadratic model cost an
    /// extra metric product and are computed only when <see cref="NaturalGradientOptions.KlClip"/>, Levenberg–Marquardt
    /// damping or <see cref="NaturalGradientOptions.ReportPredictedKl"/> asks for them; Levenberg–Marquardt also
    /// evaluates the loss after the step (one more forward pass). The step is skipped (weights, momentum and damping
    /// unchanged) when the metric batch's statistics would overflow the curvature (<see cref="FiniteGuard"/>: one more
    /// host read per step) or a step is not finite; the report says which.
    /// </remarks>
    /// <exception cref="NativeOperationException">libtorch failed (one line: what and what to do).</exception>
    public NaturalGradientStepReport Step(Tensor x, Tensor y, Tensor? metricInputs = null, Tensor? metricTargets = null) =>
        NativeCall.Run($"the natural-gradient step ({Options.Preconditioner.Structure})", () => StepCore(x, y, metricInputs, metricTargets));

    private NaturalGradientStepReport StepCore(Tensor x, Tensor y, Tensor? metricInputs, Tensor? metricTargets)
    {
        _model.zero_grad();
        Preconditioner.Capture.Clear();
        var output = _model.call(x);
        var lossTensor = Preconditioner.Backward(output, y, metricInputs, metricTargets);
        Preconditioner.Reducer?.ReduceGradients(_model.parameters().Where(p => p.grad is not null).Select(p => p.grad!).ToList());
        double lambda = _damping.Current;
        Preconditioner.Damping = lambda;

        using var _ = no_grad();
        if (Preconditioner.MetricRejected)
            return new NaturalGradientStepReport(lossTensor.ToDouble(), lambda, double.NaN, double.NaN, Applied: false, StepRejection.StatisticsOverflow);
        var layers = Preconditioner.Layers;
        var g = Preconditioner.GradientMatrices();
        if (Options.WeightDecay > 0)
            g = g.Select((t, i) => t.add_(layers[i].WeightMatrix(), alpha: Options.WeightDecay)).ToList();
        var delta = Preconditioner.Solve(g, lambda);
        // Candidate momentum buffers and steps: momentum and weights take them only if every step is finite.
        var directions = layers.Select((l, i) => MomentumCandidate(_layerMomentum, l.Name, delta[i])).ToList();
        var plain = _uncovered.Where(p => p.grad is not null)
            .Select(p => (Parameter: p, Direction: MomentumCandidate(_plainMomentum, p, PlainDirection(p)))).ToList();
        var u = directions.Select(d => d.mul(-LearningRate)).ToList();
        var plainSteps = plain.Select(t => t.Direction.mul(-LearningRate)).ToList();

        // One host read: the loss and whether every step (natural-gradient and plain) is finite.
        var check = NaturalGradientPreconditioner.FiniteCheck(u.Concat(plainSteps));
        var read = stack(new[] { lossTensor.to_type(ScalarType.Float64), check }).cpu().data<double>().ToArray();
        double loss = read[0];
        if (!double.IsFinite(read[1]))
        {
            _damping.Observe(double.NaN);
            return new NaturalGradientStepReport(loss, lambda, double.NaN, double.NaN, Applied: false, StepRejection.NonFiniteDirection);
        }
        for (int i = 0; i < layers.Count; i++) CommitMomentum(_layerMomentum, layers[i].Name, directions[i]);
        foreach (var (p, d) in plain) CommitMomentum(_plainMomentum, p, d);

        double quad = double.NaN, linear = double.NaN;
        bool lm = Options.DampingSchedule == DampingSchedule.LevenbergMarquardt;
        if (Options.KlClip is not null || lm || Options.ReportPredictedKl)
        {
            // uᵀMu and gᵀu of the step, read together: the predicted KL ½uᵀMu and the quadratic model q(u) = gᵀu + ½uᵀMu.
            var quadratic = Preconditioner.Curvature.QuadraticForm(layers, u);
            Tensor lin = zeros(1, dtype: ScalarType.Float64).squeeze();
            for (int i = 0; i < u.Count; i++) lin = lin.add_((u[i] * g[i]).sum(ScalarType.Float64));
            var forms = stack(new[] { quadratic.to_type(ScalarType.Float64), lin }).cpu().data<double>().ToArray();
            quad = forms[0];
            linear = forms[1];
        }
        if (Options.KlClip is { } kappa && 0.5 * quad > kappa)
        {
            double scale = Math.Sqrt(kappa / (0.5 * quad));
            foreach (var t in u) t.mul_(scale);
            quad *= scale * scale;
            linear *= scale;
        }

        for (int i = 0; i < layers.Count; i++) layers[i].AddToWeights(u[i]);
        for (int i = 0; i < plain.Count; i++) plain[i].Parameter.add_(plainSteps[i]);

        double rho = double.NaN;
        if (lm)
        {
            double newLoss = Preconditioner.Likelihood.Loss(_model.call(x), y).ToDouble();
            double predicted = linear + 0.5 * quad;
            // A model that predicts no decrease (e.g. η > 2 on a quadratic) gives no trust: count it as a failure.
            rho = predicted < 0 ? (newLoss - loss) / predicted : double.NaN;
            _damping.Observe(rho);
        }
        return new NaturalGradientStepReport(loss, lambda, rho, 0.5 * quad, Applied: true);
    }

    /// <summary>μ·buf + d (d itself without momentum or before the first step), without touching the buffer.</summary>
    private Tensor MomentumCandidate<TKey>(Dictionary<TKey, Tensor> buffers, TKey key, Tensor direction) where TKey : notnull =>
        Options.Momentum != 0 && buffers.TryGetValue(key, out var buf) ? buf.mul(Options.Momentum).add_(direction) : direction;

    /// <summary>buf ← the candidate, in place in the long-lived buffer (the caller checked that it is finite).</summary>
    private void CommitMomentum<TKey>(Dictionary<TKey, Tensor> buffers, TKey key, Tensor candidate) where TKey : notnull
    {
        if (Options.Momentum == 0) return;
        if (buffers.TryGetValue(key, out var buf)) buf.copy_(candidate);
        else buffers[key] = candidate.detach().clone().DetachFromDisposeScope();
    }

    private Tensor PlainDirection(Parameter p) =>
        Options.WeightDecay > 0 ? p.grad!.add(p.detach(), alpha: Options.WeightDecay) : p.grad!;

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
/// <param name="PredictedKl">½ uᵀMu of the applied step u; NaN unless a KL clip, Levenberg–Marquardt damping or
/// <see cref="NaturalGradientOptions.ReportPredictedKl"/> needed it.</param>
/// <param name="Applied">False when the step was skipped and the weights were left unchanged.</param>
/// <param name="Rejection">Why it was skipped (<see cref="StepRejection.None"/> when applied).</param>
public sealed record NaturalGradientStepReport(double Loss, double Damping, double Rho, double PredictedKl, bool Applied,
    StepRejection Rejection = StepRejection.None);
