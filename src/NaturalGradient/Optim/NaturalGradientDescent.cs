using NaturalGradient.Capture;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NaturalGradient.Damping;
using NaturalGradient.Diagnostics;
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
/// <remarks>
/// Each step returns a <see cref="StepReport"/>, keeps it as <see cref="LastReport"/>, raises <see cref="StepCompleted"/>
/// and writes it to the optional <see cref="ILogger"/> (Debug per step, Warning for a skipped step). The library writes
/// nothing to the console.
/// </remarks>
public sealed class NaturalGradientDescent : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly IDampingPolicy _damping;
    private readonly Dictionary<string, Tensor> _layerMomentum = new();
    private readonly Dictionary<Parameter, Tensor> _plainMomentum = new(ReferenceEqualityComparer.Instance);
    private readonly List<Parameter> _uncovered;

    private readonly ILogger _logger;

    /// <param name="model">The network; invoke it with <c>call</c> so hooks fire.</param>
    /// <param name="likelihood">Loss and output Fisher.</param>
    /// <param name="options">Preconditioner and update rule; defaults documented per property.</param>
    /// <param name="logger">Receives each step's report (Debug) and skipped steps (Warning); null = no logging.</param>
    public NaturalGradientDescent(nn.Module<Tensor, Tensor> model, ILikelihood likelihood, NaturalGradientOptions? options = null,
        ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
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

    /// <summary>The report of the last <see cref="Step"/>, or null before the first.</summary>
    public StepReport? LastReport { get; private set; }

    /// <summary>Steps taken so far (applied or skipped).</summary>
    public long StepCount { get; private set; }

    /// <summary>Steps skipped so far because the solve was not finite.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>Raised after every <see cref="Step"/> with its report (on the training thread, before Step returns).</summary>
    public event EventHandler<StepReport>? StepCompleted;

    /// <summary>One step on the batch (x, y); the metric may come from other inputs (seed 001 §5).</summary>
    public StepReport Step(Tensor x, Tensor y, Tensor? metricInputs = null, Tensor? metricTargets = null)
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
        long solveStart = Stopwatch.GetTimestamp();
        var delta = Preconditioner.Solve(g, lambda);
        if (!delta.All(d => d.isfinite().all().item<bool>()))
        {
            _damping.Observe(double.NaN);
            return Finish(new StepReport(loss, lambda, double.NaN, double.NaN, Applied: false), Stopwatch.GetElapsedTime(solveStart), g, null);
        }

        var u = new List<Tensor>(layers.Count);
        for (int i = 0; i < layers.Count; i++)
            u.Add(MomentumStep(_layerMomentum, layers[i].Name, delta[i]).mul(-LearningRate));

        // Predicted KL of the applied step, ½ uᵀMu, and the quadratic model q(u) = gᵀu + ½uᵀMu.
        var mu = Preconditioner.Curvature.Multiply(layers, u);
        double quad = u.Select((t, i) => (t * mu[i]).sum().ToDouble()).Sum();
        double linear = u.Select((t, i) => (t * g[i]).sum().ToDouble()).Sum();
        var solveTime = Stopwatch.GetElapsedTime(solveStart);
        double scale = 1;
        if (Options.KlClip is { } kappa && 0.5 * quad > kappa)
        {
            scale = Math.Sqrt(kappa / (0.5 * quad));
            u = u.Select(t => t * scale).ToList();
            quad *= scale * scale;
            linear *= scale;
        }

        for (int i = 0; i < layers.Count; i++) layers[i].AddToWeights(u[i]);
        foreach (var p in _uncovered) ApplyPlainStep(p);

        double rho = double.NaN;
        if (Options.DampingSchedule == DampingSchedule.LevenbergMarquardt || Options.Diagnostics == DiagnosticsLevel.Detailed)
        {
            double newLoss = Preconditioner.Likelihood.Loss(_model.call(x), y).ToDouble();
            double predicted = linear + 0.5 * quad;
            // A model that predicts no decrease (e.g. η > 2 on a quadratic) gives no trust: count it as a failure.
            rho = predicted < 0 ? (newLoss - loss) / predicted : double.NaN;
            if (Options.DampingSchedule == DampingSchedule.LevenbergMarquardt) _damping.Observe(rho);
        }
        return Finish(new StepReport(loss, lambda, rho, 0.5 * quad, Applied: true) { KlClipScale = scale }, solveTime, g, u);
    }

    /// <summary>Completes the report from values already on the host, publishes it and returns it.</summary>
    private StepReport Finish(StepReport report, TimeSpan solveTime, IReadOnlyList<Tensor> g, IReadOnlyList<Tensor>? u)
    {
        StepCount++;
        if (!report.Applied) SkippedSteps++;
        report = SolverInfo.With(report, Preconditioner.Curvature) with
        {
            Step = StepCount,
            SkippedSteps = SkippedSteps,
            CurvatureUpdateTime = Preconditioner.LastCurvatureUpdateTime,
            SolveTime = solveTime,
        };
        if (Options.Diagnostics == DiagnosticsLevel.Detailed)
            report = report with { GradientNorm = Norm(g), UpdateNorm = u is null ? null : Norm(u) };
        LastReport = report;
        StepLog.Write(_logger, report);
        StepCompleted?.Invoke(this, report);
        return report;
    }

    private static double Norm(IReadOnlyList<Tensor> tensors) => Math.Sqrt(tensors.Sum(t => t.square().sum().ToDouble()));

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
