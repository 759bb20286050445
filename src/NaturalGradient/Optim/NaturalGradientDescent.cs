using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Damping;
using NaturalGradient.Diagnostics;
using NaturalGradient.Fisher;
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
/// <remarks>
/// Each step returns a <see cref="StepReport"/>, keeps it as <see cref="LastReport"/>, raises <see cref="StepCompleted"/>
/// and writes it to the optional <see cref="ILogger"/> (Debug per step, Warning for a skipped step). The library writes
/// nothing to the console.
/// </remarks>
public sealed partial class NaturalGradientDescent : IDisposable
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
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(likelihood);
        _logger = logger ?? NullLogger.Instance;
        Options = (options ?? new NaturalGradientOptions()).Validate();
        _model = model;
        Preconditioner = new NaturalGradientPreconditioner(model, likelihood, Options.Preconditioner);
        if (Options.Preconditioner.Structure == CurvatureStructure.Kbfgs) _secantEstimator = new FisherEstimator(likelihood);
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
    /// <exception cref="ArgumentOutOfRangeException">Set to a value that is not a finite number &gt; 0 (as <see cref="NaturalGradientOptions.LearningRate"/>).</exception>
    public double LearningRate
    {
        get => _learningRate;
        set
        {
            if (!(value > 0) || double.IsInfinity(value))
                throw new ArgumentOutOfRangeException(nameof(LearningRate), value, $"LearningRate must be a finite number > 0, got {value}");
            _learningRate = value;
        }
    }

    private double _learningRate;

    /// <summary>The damping the next step will use.</summary>
    public double Damping => _damping.Current;

    /// <summary>The report of the last <see cref="Step"/>, or null before the first.</summary>
    public StepReport? LastReport { get; private set; }

    /// <summary>Steps taken so far (applied or skipped).</summary>
    public long StepCount { get; private set; }

    /// <summary>Steps skipped so far (rejected statistics or a non-finite step).</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>Raised after every <see cref="Step"/> with its report (on the training thread, before Step returns).</summary>
    public event EventHandler<StepReport>? StepCompleted;

    /// <summary>One step on the batch (x, y); the metric may come from other inputs (seed 001 §5).</summary>
    /// <remarks>
    /// Work per step: one forward and one backward pass (the empirical Fisher takes its per-example output gradients
    /// from that backward; without weight decay and with one process the pass stops at the outputs of layers called once
    /// with one position per example, whose gradient w DᵀĀ is formed from the statistics only if something reads it, so
    /// those parameters' .grad is left unset — read it with <see cref="NaturalGradientPreconditioner.GradientMatrices"/>
    /// inside the step's dispose scope), the curvature's update and solve, and one host read that returns the loss together with
    /// the finiteness of every direction (one fused scalar). The predicted KL ½uᵀMu and the quadratic model cost an
    /// extra metric product and are computed only when <see cref="NaturalGradientOptions.KlClip"/>, Levenberg–Marquardt
    /// damping, <see cref="NaturalGradientOptions.ReportPredictedKl"/> or <see cref="DiagnosticsLevel.Detailed"/> asks
    /// for them; Levenberg–Marquardt (and the detailed report's ρ) also evaluates the loss after the step (one more
    /// forward pass). The <see cref="StepReport"/> holds only values already read, plus timings. The step is skipped (weights, momentum and damping
    /// unchanged) when the metric batch's statistics would overflow the curvature (<see cref="FiniteGuard"/>: one more
    /// host read per step) or a step is not finite; the report says which.
    /// </remarks>
    /// <exception cref="NativeOperationException">libtorch failed (one line: what and what to do).</exception>
    /// <exception cref="ArgumentException">A batch tensor is null or empty, on another device than the model, or (inputs) of
    /// another floating-point dtype; checked before any work.</exception>
    /// <exception cref="ObjectDisposedException">The optimiser was disposed.</exception>
    public StepReport Step(Tensor x, Tensor y, Tensor? metricInputs = null, Tensor? metricTargets = null)
    {
        Preconditioner.CheckUsable();
        var parameter = Preconditioner.ModelTensor;
        BatchCheck.Input(x, nameof(x), parameter);
        BatchCheck.Target(y, nameof(y), parameter, "the model");
        if (metricInputs is not null) BatchCheck.Input(metricInputs, nameof(metricInputs), parameter);
        if (metricTargets is not null) BatchCheck.Target(metricTargets, nameof(metricTargets), parameter, "the model");
        if (metricInputs is not null && Preconditioner.Curvature is KbfgsCurvature)
            throw new ArgumentException("kbfgs takes its secant pairs on the step's own batch: call Step without metricInputs", nameof(metricInputs));
        return NativeCall.Run($"the natural-gradient step ({Options.Preconditioner.Structure})", () => StepCore(x, y, metricInputs, metricTargets));
    }

    private StepReport StepCore(Tensor x, Tensor y, Tensor? metricInputs, Tensor? metricTargets)
    {
        _model.zero_grad();
        Preconditioner.Capture.Clear();
        var output = _model.call(x);
        // Without weight decay and with one process, gradients are read only through the lazy list below, so the
        // backward may leave the gradients of layers whose statistics give them (w DᵀĀ) unformed.
        bool lazyGradients = Options.WeightDecay == 0 && Preconditioner.Reducer is null;
        var lossTensor = Preconditioner.BackwardOfChecked(output, y, metricInputs, metricTargets, lazyGradients ? _uncovered : null);   // Step checked the batch
        Preconditioner.Reducer?.ReduceGradients(_model.parameters().Where(p => p.grad is not null).Select(p => p.grad!).ToList());
        double lambda = _damping.Current;
        Preconditioner.Damping = lambda;

        using var _ = no_grad();
        if (Preconditioner.MetricRejected)
            return Finish(new StepReport(lossTensor.ToDouble(), lambda, double.NaN, double.NaN, Applied: false, StepRejection.StatisticsOverflow),
                TimeSpan.Zero, Array.Empty<Tensor>(), null, 1);
        var layers = Preconditioner.Layers;
        // Without weight decay the gradient matrices are formed only if something reads them (a block without a
        // mean-gradient route, the KL clip on η²Δᵀg where the block gives no Δᵀg, the quadratic model, detailed diagnostics).
        using var lazy = Options.WeightDecay > 0 ? null : Preconditioner.LazyGradientMatrices();
        IReadOnlyList<Tensor> g = lazy is not null ? lazy
            : Preconditioner.GradientMatrices().Select((t, i) => t.add_(layers[i].WeightMatrix(), alpha: Options.WeightDecay)).ToList();
        long solveStart = Stopwatch.GetTimestamp();
        // Without weight decay and with one process, g is the .grad of the backward that gave the statistics. The KL
        // clip on η²Δᵀg takes ⟨Δₗ, gₗ⟩ from the blocks that form it without gₗ (the rest form gₗ when read).
        bool gradientClip = Options.KlClip is not null && Options.KlClipForm == KlClipForm.PreconditionedGradient;
        var innerProducts = gradientClip && lazyGradients ? new Tensor?[layers.Count] : null;
        var delta = lazyGradients
            ? Preconditioner.SolveMeanGradient(g, lambda, innerProducts)
            : Preconditioner.Solve(g, lambda);
        double scale = 1;
        if (gradientClip && Options.KlClip is { } bound)
            scale = ClipPreconditionedGradient(delta, g, innerProducts, bound);
        // Candidate momentum buffers: momentum and weights take them only if every step is finite. The step is
        // u = s · S with S the candidates and s = −η (one fused add into the weights, no u tensor); for η > 1 the
        // product −η · S could overflow where S does not, so S is formed as −η · candidate and checked, with s = 1.
        var directions = layers.Select((l, i) => MomentumCandidate(_layerMomentum, l.Name, delta[i], owned: true)).ToList();
        var plain = _uncovered.Where(p => p.grad is not null)
            .Select(p => (Parameter: p, Direction: MomentumCandidate(_plainMomentum, p, PlainDirection(p), owned: false))).ToList();
        bool formSteps = LearningRate > 1;
        double s = formSteps ? 1 : -LearningRate;
        var steps = formSteps ? directions.Select(d => d.mul(-LearningRate)).ToList() : directions;
        var plainSteps = formSteps ? plain.Select(t => t.Direction.mul(-LearningRate)).ToList() : plain.Select(t => t.Direction).ToList();

        // One host read: the loss and whether every step (natural-gradient and plain) is finite.
        var (loss, check) = NaturalGradientPreconditioner.ReadWithFiniteSum(lossTensor, steps.Concat(plainSteps));
        if (!double.IsFinite(check) && !FiniteGuard.AllFinite(steps.Concat(plainSteps)))
        {
            _damping.Observe(double.NaN);
            return Finish(new StepReport(loss, lambda, double.NaN, double.NaN, Applied: false, StepRejection.NonFiniteDirection),
                Stopwatch.GetElapsedTime(solveStart), g, null, 1);
        }
        for (int i = 0; i < layers.Count; i++) CommitMomentum(_layerMomentum, layers[i].Name, directions[i]);
        foreach (var (p, d) in plain) CommitMomentum(_plainMomentum, p, d);

        double quad = double.NaN, linear = double.NaN;
        bool lm = Options.DampingSchedule == DampingSchedule.LevenbergMarquardt;
        bool detailed = Options.Diagnostics == DiagnosticsLevel.Detailed;
        bool stepClip = Options.KlClip is not null && Options.KlClipForm == KlClipForm.StepQuadraticForm;
        if (stepClip || lm || Options.ReportPredictedKl || detailed)
        {
            // uᵀMu of the step u = s · S (the predicted KL ½uᵀMu) and, for the quadratic model q(u) = gᵀu + ½uᵀMu that
            // ρ needs, gᵀu, read together; the clip and the report alone need no gradient.
            var quadratic = Preconditioner.Curvature.QuadraticForm(layers, steps).to_type(ScalarType.Float64);
            bool model = lm || detailed;
            var forms = HostRead.Doubles(model ? stack(new[] { quadratic, QuadraticForms.Sum(steps, g) }) : quadratic);
            quad = s * s * forms[0];
            if (model) linear = s * forms[1];
        }
        var solveTime = Stopwatch.GetElapsedTime(solveStart);
        if (stepClip && Options.KlClip is { } kappa && 0.5 * quad > kappa)
        {
            scale = Math.Sqrt(kappa / (0.5 * quad));
            s *= scale;
            quad *= scale * scale;
            linear *= scale;
        }

        for (int i = 0; i < layers.Count; i++) layers[i].AddToWeights(steps[i], s);
        for (int i = 0; i < plain.Count; i++) plain[i].Parameter.add_(plainSteps[i], alpha: s);

        double rho = double.NaN;
        if (lm || detailed)
        {
            double newLoss = Preconditioner.Likelihood.Loss(_model.call(x), y).ToDouble();
            double predicted = linear + 0.5 * quad;
            // A model that predicts no decrease (e.g. η > 2 on a quadratic) gives no trust: count it as a failure.
            rho = predicted < 0 ? (newLoss - loss) / predicted : double.NaN;
            if (lm) _damping.Observe(rho);
        }
        if (Preconditioner.Curvature is KbfgsCurvature kbfgs) UpdateSecant(kbfgs, x, y);
        return Finish(new StepReport(loss, lambda, rho, 0.5 * quad, Applied: true) { KlClipScale = scale }, solveTime, g, steps, Math.Abs(s));
    }

    /// <summary>
    /// K-BFGS (Goldfarb, Ren &amp; Bahamou 2020, algorithm 1): the "after" half of each layer's secant pair, from a second
    /// forward-backward pass on the step's batch at the new weights (empirical-Fisher statistics: the pair is a change of
    /// the loss gradient), then one double-damped BFGS update of each H_g. Taken only after an applied step.
    /// </summary>
    private void UpdateSecant(KbfgsCurvature kbfgs, Tensor x, Tensor y)
    {
        var capture = Preconditioner.Capture;
        capture.Clear();
        using (enable_grad())
        {
            var output = _model.call(x);
            kbfgs.UpdateSecant(_secantEstimator!.Collect(capture, capture.Recorded(), output, y));
        }
        capture.Clear();
    }

    private readonly FisherEstimator? _secantEstimator;   // K-BFGS only: the empirical statistics of the secant pass

    /// <summary>
    /// <see cref="KlClipForm.PreconditionedGradient"/>: scales every Δ_l in place by ν = min(1, √(κ / (η² Σ_l Δ_lᵀ g_l)))
    /// and returns ν (one host read). Δ_lᵀ g_l is <paramref name="innerProducts"/>[l] where the block formed it without
    /// g_l, else the inner product with g_l (formed when read). A non-finite or non-positive sum leaves Δ alone (the
    /// finiteness check after it rejects a non-finite Δ).
    /// </summary>
    private double ClipPreconditionedGradient(IReadOnlyList<Tensor> delta, IReadOnlyList<Tensor> g, Tensor?[]? innerProducts, double kappa)
    {
        double vg = LearningRate * LearningRate * QuadraticForms.Sum(delta, g, innerProducts).ToDouble();
        if (!(vg > kappa) || !double.IsFinite(vg)) return 1;
        double nu = Math.Sqrt(kappa / vg);
        foreach (var d in delta) d.mul_(nu);
        return nu;
    }

    /// <summary>Completes the report from values already on the host, publishes it and returns it; the step was
    /// <paramref name="stepScale"/> · <paramref name="steps"/> (null when none was taken).</summary>
    private StepReport Finish(StepReport report, TimeSpan solveTime, IReadOnlyList<Tensor> g, IReadOnlyList<Tensor>? steps, double stepScale)
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
        if (Options.Diagnostics == DiagnosticsLevel.Detailed && g.Count > 0)
            report = report with { GradientNorm = Norm(g), UpdateNorm = steps is null ? null : stepScale * Norm(steps) };
        LastReport = report;
        StepLog.Write(_logger, report);
        StepCompleted?.Invoke(this, report);
        return report;
    }

    private static double Norm(IReadOnlyList<Tensor> tensors) => Math.Sqrt(tensors.Sum(t => t.square().sum().ToDouble()));

    /// <summary>
    /// μ·buf + d (d itself without momentum or before the first step), without touching the buffer. With
    /// <paramref name="owned"/> (a solve's fresh Δ, which the step owns: <see cref="ICurvature.Precondition"/>) it is formed
    /// in place in d, with no new tensor per layer and step; a plain parameter's .grad is not owned.
    /// </summary>
    private Tensor MomentumCandidate<TKey>(Dictionary<TKey, Tensor> buffers, TKey key, Tensor direction, bool owned) where TKey : notnull
    {
        if (Options.Momentum == 0 || !buffers.TryGetValue(key, out var buf)) return direction;
        return owned ? direction.add_(buf, alpha: Options.Momentum) : direction.add(buf, alpha: Options.Momentum);
    }

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
