using System.Diagnostics;
using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Preconditioning;

/// <summary>
/// Natural-gradient preconditioner bound to an ordinary TorchSharp model: after the backward pass it replaces
/// every covered parameter's .grad by Δ = (M + λI)⁻¹ g, so any TorchSharp optimiser (SGD, momentum, Adam)
/// then takes a natural-gradient step. Parameters of uncovered layers keep their plain gradient.
/// </summary>
/// <example>
/// <code>
/// using var ngd = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
///     new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Damping = 1e-2 });
/// using var step = torch.NewDisposeScope();
/// optimizer.zero_grad();
/// var output = model.call(x);          // call(), not forward(): hooks fire
/// ngd.Backward(output, y);             // loss.backward() + the metric's statistics
/// ngd.Precondition();                  // .grad ← (M + λI)⁻¹ .grad
/// optimizer.step();
/// </code>
/// </example>
/// <remarks>Call <see cref="Backward"/> and <see cref="Precondition"/> inside the same dispose scope (one per step).</remarks>
public sealed partial class NaturalGradientPreconditioner : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly FisherEstimator _estimator;
    private readonly Generator _generator;
    private IReadOnlyList<ILayerAdapter> _layers = Array.Empty<ILayerAdapter>();
    // Statistics whose per-layer mean gradient w Σ δāᵀ is the mean loss's gradient (one process): the empirical Fisher's
    // from that loss's own backward, or the loss's rows beside a Monte-Carlo or exact metric (LossGradientRows); see SolveMeanGradient.
    private IReadOnlyList<LayerStatistics>? _meanGradientStatistics;

    public NaturalGradientPreconditioner(nn.Module<Tensor, Tensor> model, ILikelihood likelihood, PreconditionerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(likelihood);
        Options = (options ?? new PreconditionerOptions()).Validate();
        _model = model;
        Likelihood = likelihood;
        _estimator = new FisherEstimator(likelihood, Options.Fisher, Options.MonteCarloSamples);
        _generator = new Generator((ulong)Options.Seed);
        Capture = new LayerCapture(model, include: Options.IncludeLayer);
        if (Capture.Layers.Count == 0)
            throw new ArgumentException(
                $"the model has no layer with trainable parameters to precondition (covered kinds: {string.Join(", ", Capture.Registry.SupportedKinds)})", nameof(model));
        if (Options.Structure == CurvatureStructure.Kbfgs && Capture.Layers.FirstOrDefault(l => !l.Adapter.IsKronecker) is { } elementwise)
            throw new ModelNotSupportedException(
                $"K-BFGS needs Kronecker-factored layers; layer '{elementwise.Name}' ({elementwise.Adapter.KindName}) is not: " +
                "exclude it with IncludeLayer (it keeps its plain gradient) or use kfac, tengrad or block");
        if (Options.Structure is CurvatureStructure.Ekfac or CurvatureStructure.Kbfgs
            && Capture.Layers.Select(l => l.Adapter).OfType<TiedLayerAdapter>().FirstOrDefault(t => !t.KroneckerFactored) is { } transposed)
            throw new ModelNotSupportedException(
                $"{Options.Structure.ToString().ToLowerInvariant()} has no Kronecker factorisation for tensor {string.Join(", ", transposed.TiedTensors.Select(t => $"'{t}'"))}, " +
                $"which layers {string.Join(" and ", transposed.Uses.Select(u => $"'{u.Name}' ({u.KindName})"))} use in transposed layouts (tied weights): " +
                "use kfac (a sum of the uses' Kronecker terms), or tengrad, block, diag or auto (exact per-example gradients of the tied tensor), " +
                "or exclude these layers with IncludeLayer (the tensor then keeps its plain gradient)");
        if (Options.Structure is CurvatureStructure.Kfac or CurvatureStructure.Ekfac or CurvatureStructure.Kbfgs
            && Capture.Layers.Select(l => l.Adapter).FirstOrDefault(a => a.IsKronecker && DenseFactorSide(a) > Options.Kfac.MaxFactorDimension) is { } wide)
            throw new ModelNotSupportedException(
                $"{Options.Structure.ToString().ToLowerInvariant()} would keep {DenseFactors(wide)} for layer '{wide.Name}' ({wide.KindName}), " +
                $"wider than the limit of {Options.Kfac.MaxFactorDimension} (KfacOptions.MaxFactorDimension): use tengrad, diag or auto, " +
                "or exclude the layer with IncludeLayer (it then keeps its plain gradient)");
        Curvature = CurvatureFactory.Create(Options);
        if (Curvature is ExactCurvature exact) exact.CheckSize(Capture.Layers.Select(l => l.Adapter));
        Damping = Options.Damping;
        _written = new PreconditionedGradientProbe(Capture.Layers.SelectMany(l => l.Adapter.Parameters));
    }

    public PreconditionerOptions Options { get; }

    /// <summary>
    /// The registration report: every parameter tensor of the model with its layer kind and the structure and Fisher it
    /// gets, or why it keeps its plain gradient. Print <see cref="CoverageReport.SummaryLines"/> at the start of training.
    /// </summary>
    public CoverageReport Coverage() => CoverageReport.Build(_model, Capture, Options);
    public ILikelihood Likelihood { get; }
    public LayerCapture Capture { get; }
    public ICurvature Curvature { get; private set; }

    /// <summary>
    /// Data-parallel training with a curvature that makes statistics global itself: replaces <see cref="Curvature"/> by
    /// <paramref name="wrap"/>(Curvature) (which then owns it); from then on each process's statistics go to it unreduced
    /// (not through <see cref="IDataParallelReducer.ReduceStatistics"/>). Before the first metric collection only.
    /// </summary>
    /// <exception cref="InvalidOperationException">A metric has been collected already.</exception>
    public void Distribute(Func<ICurvature, IDistributedCurvature> wrap)
    {
        ArgumentNullException.ThrowIfNull(wrap);
        if (StepCount > 0 || _layers.Count > 0) throw new InvalidOperationException("Distribute must be called before the first metric collection");
        Curvature = wrap(Curvature);
    }

    /// <summary>Data-parallel training: makes the statistics (and, in <see cref="Optim.NaturalGradientDescent"/>, the gradients)
    /// of this process's shard global before the curvature sees them; null = one process.</summary>
    public IDataParallelReducer? Reducer { get; set; }

    /// <summary>The λ the next <see cref="Precondition"/> uses; starts at <see cref="PreconditionerOptions.Damping"/>.</summary>
    public double Damping { get; set; }

    /// <summary>Metric collections so far (the step index given to the curvature).</summary>
    public long StepCount { get; private set; }

    /// <summary>Wall time of the last metric collection's statistics and curvature update (see <see cref="CollectMetric"/>).</summary>
    public TimeSpan LastCurvatureUpdateTime { get; private set; }

    /// <summary>
    /// True when the last metric batch was ignored because its statistics would overflow the curvature (∞/NaN, or second
    /// moments beyond the dtype's range): <see cref="Precondition"/> then leaves .grad alone and reports
    /// <see cref="StepRejection.StatisticsOverflow"/>, and the caller should skip the optimiser step.
    /// </summary>
    public bool MetricRejected { get; private set; }

    /// <summary>The layers of the last metric collection, in model order.</summary>
    public IReadOnlyList<ILayerAdapter> Layers => _layers;

    private bool NeedsGraph => Options.Structure == CurvatureStructure.HessianFree;

    /// <summary>
    /// Computes the mean loss of <paramref name="output"/> (from <c>model.call(x)</c>), collects the metric's
    /// statistics and runs <c>loss.backward()</c>. The metric comes from this batch, or from a separate forward
    /// pass on <paramref name="metricInputs"/> (another batch, or this batch plus unlabeled inputs; seed 001 §5).
    /// </summary>
    /// <returns>The loss (a scalar tensor, detached).</returns>
    /// <exception cref="NativeOperationException">libtorch failed (one line: what and what to do).</exception>
    /// <exception cref="ArgumentException">A tensor is empty, on another device than the model, or (output) has no autograd graph
    /// (computed under no_grad() or detached); checked before any work.</exception>
    /// <exception cref="ObjectDisposedException">The preconditioner was disposed.</exception>
    public Tensor Backward(Tensor output, Tensor target, Tensor? metricInputs = null, Tensor? metricTargets = null)
    {
        CheckUsable();
        BatchCheck.Output(output, nameof(output));
        BatchCheck.Target(target, nameof(target), output, "the output");
        if (metricInputs is not null) BatchCheck.Input(metricInputs, nameof(metricInputs), ModelTensor);
        if (metricTargets is not null) BatchCheck.Target(metricTargets, nameof(metricTargets), ModelTensor, "the model");
        return RunBackward(output, target, metricInputs, metricTargets);
    }

    /// <summary>
    /// <see cref="Backward"/> for a caller that has already checked the preconditioner and the batch
    /// (<see cref="Optim.NaturalGradientDescent.Step"/>): only the output, which that caller computed, is checked.
    /// </summary>
    /// <param name="output">The model output of the step's batch.</param>
    /// <param name="target">Its targets.</param>
    /// <param name="metricInputs">Inputs of a separate metric batch, or null.</param>
    /// <param name="metricTargets">Their targets, or null.</param>
    /// <param name="plainParameters">When not null, the caller reads gradients only through <see cref="LazyGradientMatrices"/>
    /// and takes a plain step on these parameters (those outside every covered layer): with the empirical Fisher of the
    /// step's own batch and one process, the backward pass then stops at the layer outputs for the layers whose gradient
    /// the statistics give (<see cref="GradientFromStatistics"/>) and fills .grad only of the others and of these.</param>
    internal Tensor BackwardOfChecked(Tensor output, Tensor target, Tensor? metricInputs, Tensor? metricTargets,
        IReadOnlyList<Parameter>? plainParameters = null)
    {
        BatchCheck.Output(output, nameof(output));
        return RunBackward(output, target, metricInputs, metricTargets, plainParameters);
    }

    private Tensor RunBackward(Tensor output, Tensor target, Tensor? metricInputs, Tensor? metricTargets, IReadOnlyList<Parameter>? plainParameters = null) =>
        NativeCall.Run("the natural-gradient backward pass", () => BackwardCore(output, target, metricInputs, metricTargets, plainParameters));

    private bool _disposed;

    // What the last Precondition wrote into .grad, to refuse preconditioning it twice.
    private PreconditionedGradientProbe _written = null!;

    private Tensor BackwardCore(Tensor output, Tensor target, Tensor? metricInputs, Tensor? metricTargets, IReadOnlyList<Parameter>? plainParameters)
    {
        _meanGradientStatistics = null;
        _gradientSources = null;
        var loss = Likelihood.Loss(output, target);
        if (metricInputs is null && Options.Fisher == FisherKind.Empirical)
        {
            // The empirical Fisher's per-example output gradients are m times those of the mean loss: take them from
            // this one backward pass (retained on the layer outputs) instead of a second pass.
            Capture.ThrowIfBypassed(loss);
            var recorded = Capture.Recorded();
            ThrowIfRowsAreNotExamples(recorded, output);
            CheckUsesOnce(loss, recorded);
            IReadOnlyList<LayerStatistics> statistics;
            long start;
            if (plainParameters is not null && !NeedsGraph && Reducer is null)
            {
                var fromStatistics = recorded.Select(GradientFromStatistics).ToArray();
                var outputGradients = Capture.BackwardToCalls(loss, recorded, ParametersToDifferentiate(recorded, fromStatistics, plainParameters));
                start = Stopwatch.GetTimestamp();
                statistics = FisherEstimator.CollectFromLossGradients(recorded, output.size(0), outputGradients);
                _gradientSources = statistics.Select((st, i) => fromStatistics[i] ? GradientSource(st) : null).ToArray();
            }
            else
            {
                FisherEstimator.RetainOutputGradients(recorded);
                loss.backward(retain_graph: NeedsGraph);
                start = Stopwatch.GetTimestamp();
                statistics = FisherEstimator.CollectFromLossGradients(recorded, output.size(0));
            }
            // The mean-gradient routes (K-FAC's Δ from D and Ā, TENGraD's push-through without g) take single-call layers only.
            bool singleCalls = recorded.All(l => l.CallCount == 1);
            UpdateCurvature(recorded, statistics, output, start);
            if (Reducer is null && !MetricRejected && singleCalls) _meanGradientStatistics = statistics;
        }
        else if (metricInputs is null)
        {
            // Monte-Carlo or exact Fisher on this batch: the loss's gradient is not the statistics' mean gradient, but
            // when every layer's gradient is w DᵀĀ with this forward's Ā (LossGradientRows), D is the loss's output gradient.
            var recorded = Capture.Recorded();   // before CollectMetric clears the capture
            var rows = plainParameters is not null && !NeedsGraph && Reducer is null && recorded.Count > 0 && recorded.All(GradientFromStatistics)
                ? recorded.Select(l => l.Calls[0].Output).ToList() : null;
            CollectMetric(output, target);
            if (rows is null) loss.backward(retain_graph: NeedsGraph);
            else LossGradientRows(loss, rows, plainParameters!, output.size(0));
        }
        else
        {
            Capture.ThrowIfBypassed(loss);
            loss.backward();
            CollectMetricFrom(metricInputs, metricTargets);
        }
        return loss.detach();
    }

    /// <summary>Collects the metric from the forward pass that produced <paramref name="output"/> (targets needed for the empirical Fisher).</summary>
    /// <remarks>A batch whose statistics would overflow the curvature (<see cref="FiniteGuard"/>) is ignored: the curvature
    /// keeps its state, the step counter does not advance and <see cref="MetricRejected"/> is set (one host sync per call).
    /// Call it before <c>loss.backward()</c> of the same forward pass (or run that with retain_graph: true): it needs the
    /// graph, and a freed graph ends the process in libtorch (TorchSharp 0.107 cannot turn that error into an exception,
    /// nor expose the graph to check it first). <see cref="Backward"/> runs both in this order.</remarks>
    public void CollectMetric(Tensor output, Tensor? targets = null)
    {
        CheckUsable();
        BatchCheck.Output(output, nameof(output));
        if (targets is not null) BatchCheck.Target(targets, nameof(targets), output, "the output");
        _meanGradientStatistics = null;
        _gradientSources = null;
        var sum = output.sum();
        Capture.ThrowIfBypassed(sum);
        long start = Stopwatch.GetTimestamp();
        var recorded = Capture.Recorded();
        ThrowIfRowsAreNotExamples(recorded, output);
        CheckUsesOnce(sum, recorded);
        UpdateCurvature(recorded, _estimator.Collect(Capture, recorded, output, targets, _generator), output, start);
    }

    /// <summary>Feeds one batch's per-layer statistics to the curvature unless the statistics guard rejects them.</summary>
    /// <param name="recorded">The layers the forward pass recorded, in order.</param>
    /// <param name="stats">Their statistics (Ā, D, weight), one per recorded layer.</param>
    /// <param name="output">The model output the statistics came from.</param>
    /// <param name="start">Timestamp at which the statistics' computation began (for <see cref="LastCurvatureUpdateTime"/>).</param>
    private void UpdateCurvature(IReadOnlyList<CapturedLayer> recorded, IReadOnlyList<LayerStatistics> stats, Tensor output, long start)
    {
        _layers = recorded.Select(l => l.Adapter).ToList();
        _collected = stats;
        Capture.Clear();
        if (Curvature is IDistributedCurvature distributed)
        {
            // Each process judges its own shard; the batch is used only if every process accepts its shard.
            MetricRejected = !distributed.AllAgree(FiniteGuard.StatisticsAreSafe(stats, null));
        }
        else
        {
            // Data-parallel: the guard judges the gathered (global) statistics only, so every process decides alike.
            if (Reducer is not null) stats = Reducer.ReduceStatistics(stats);
            MetricRejected = !FiniteGuard.StatisticsAreSafe(stats, Reducer is null ? output : null);
        }
        if (MetricRejected) return;
        Curvature.Update(new CurvatureBatch(stats, Likelihood, output, StepCount++));
        LastCurvatureUpdateTime = Stopwatch.GetElapsedTime(start);
    }

    /// <summary>Runs the model on <paramref name="inputs"/> and collects the metric there.</summary>
    public void CollectMetricFrom(Tensor inputs, Tensor? targets = null)
    {
        CheckUsable();
        BatchCheck.Input(inputs, nameof(inputs), ModelTensor);
        Capture.Clear();
        var output = _model.call(inputs);
        CollectMetric(output, targets);
    }

    /// <summary>The covered layers' current gradients as W̄-shaped matrices.</summary>
    /// <exception cref="InvalidOperationException">A layer's gradient was left to its statistics by
    /// <see cref="Optim.NaturalGradientDescent.Step"/> and that step's dispose scope has ended.</exception>
    public IReadOnlyList<Tensor> GradientMatrices() => _layers.Select((_, i) => GradientMatrix(i)).ToList();

    /// <summary>The same matrices, each formed on first access and owned by the returned list (dispose it).</summary>
    internal GradientMatrixList LazyGradientMatrices() => new(_layers.Count, GradientMatrix);

    /// <summary>Δ = (M + λI)⁻¹ g for the given W̄-shaped gradients, without touching .grad.</summary>
    public IReadOnlyList<Tensor> Solve(IReadOnlyList<Tensor> gradients, double damping) => Solve(gradients, damping, null);

    /// <summary>The checked solve; with <paramref name="meanGradientStatistics"/>, blocks may take their mean-gradient route.</summary>
    private IReadOnlyList<Tensor> Solve(IReadOnlyList<Tensor> gradients, double damping, IReadOnlyList<LayerStatistics>? meanGradientStatistics,
        Tensor?[]? innerProducts = null)
    {
        if (_layers.Count == 0) throw new InvalidOperationException("no metric collected yet: call Backward or CollectMetric first");
        if (MetricRejected)
            throw new InvalidOperationException("the last metric batch was ignored (its statistics overflow the curvature): skip this step");
        // The mean-gradient route reads the dtype from the parameters, so that it forms no gradient matrix it does not use.
        if (meanGradientStatistics is null && gradients.Count > 0) FiniteGuard.DampingFits(damping, gradients[0].dtype);
        else if (meanGradientStatistics is not null) FiniteGuard.DampingFits(damping, _layers[0].Parameters[0].dtype);
        using var _ = no_grad();
        return NativeCall.Run($"the {Options.Structure} solve", () => meanGradientStatistics is null
            ? Curvature.Precondition(_layers, gradients, damping)
            : Curvature.PreconditionMeanGradient(_layers, gradients, meanGradientStatistics, damping, innerProducts));
    }

    /// <summary>
    /// <see cref="Solve(IReadOnlyList{Tensor}, double)"/> for gradients that are exactly the .grad left by the last <see cref="Backward"/> (empirical
    /// Fisher on the same batch, one process, nothing added since): each layer's gradient is then its statistics' mean
    /// gradient w Σᵢ δᵢāᵢᵀ, and blocks that can form Δ more cheaply from Ā and D do so
    /// (<see cref="ICurvature.PreconditionMeanGradient(IReadOnlyList{ILayerAdapter}, IReadOnlyList{Tensor}, IReadOnlyList{LayerStatistics}, double)"/>; e.g. K-FAC's w (D G⁻¹)ᵀ(Ā A⁻¹) when the batch is small
    /// against the layer). Otherwise the same as <see cref="Solve(IReadOnlyList{Tensor}, double)"/>. With
    /// <paramref name="innerProducts"/> (one entry per layer), a block that can form ⟨Δₗ, gₗ⟩ from its route's own
    /// products without gₗ puts it there (<see cref="ICurvature.PreconditionMeanGradient(IReadOnlyList{ILayerAdapter}, IReadOnlyList{Tensor}, IReadOnlyList{LayerStatistics}, double, Tensor?[])"/>).
    /// </summary>
    internal IReadOnlyList<Tensor> SolveMeanGradient(IReadOnlyList<Tensor> gradients, double damping, Tensor?[]? innerProducts = null) =>
        Solve(gradients, damping, _meanGradientStatistics, innerProducts);

    /// <summary>
    /// Replaces each covered parameter's .grad by its natural gradient. If the solve produced a non-finite
    /// value the gradients are left unchanged and the report says so.
    /// </summary>
    /// <exception cref="InvalidOperationException">No backward pass ran since the last call, so .grad already holds the natural
    /// gradient (<see cref="PreconditionedGradientProbe"/>; one host read); checked before any work.</exception>
    public PreconditionReport Precondition()
    {
        CheckUsable();
        if (MetricRejected) return new PreconditionReport(Damping, false, StepRejection.StatisticsOverflow);
        if (_written.Unchanged())
            throw new InvalidOperationException(
                "Precondition was called again on the gradients it already preconditioned (no backward pass since the last call); " +
                "run Backward (or loss.backward()) before each Precondition");
        var g = GradientMatrices();
        long start = Stopwatch.GetTimestamp();
        var delta = Solve(g, Damping);
        bool finite = AllFinite(delta);
        var solveTime = Stopwatch.GetElapsedTime(start);
        if (finite)
        {
            for (int i = 0; i < _layers.Count; i++) _layers[i].WriteGradientMatrix(delta[i]);
            _written.Remember();
        }
        else
        {
            _written.Forget();   // .grad keeps the plain gradient, which may be preconditioned
        }
        var solve = (Curvature as HessianFreeCurvature)?.LastReport;
        return new PreconditionReport(Damping, finite, finite ? StepRejection.None : StepRejection.NonFiniteDirection)
        {
            CurvatureUpdateTime = LastCurvatureUpdateTime,
            SolveTime = solveTime,
            SolverIterations = solve?.Iterations,
            SolverRelativeResidual = solve?.RelativeResidual,
        };
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Capture.Dispose();
        Curvature.Dispose();
        _generator.Dispose();
        _written.Dispose();
    }
}
