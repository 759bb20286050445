using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.HessianFree;

/// <summary>
/// Hessian-free (truncated-Newton) natural gradient (seed 001 §3, §7 and algorithm 1; Martens 2010): the metric is
/// the Gauss-Newton / exact Fisher G = (1/m) Σᵢ J_rᵢᵀ H_out J_rᵢ of the step's metric batch over all covered
/// layers jointly (not block-diagonal), never formed; Δ = (G + λI)⁻¹ g is found by CG or MINRES from
/// G-vector products (<see cref="GgnVectorProduct"/>).
/// </summary>
/// <remarks>
/// <para>Per step: <see cref="Update"/> keeps the metric batch's output r (graph alive) and likelihood;
/// <see cref="Precondition"/> flattens the W̄ gradients into parameter order (<see cref="ParameterLayout"/>), solves
/// (G + λI) x = g with at most <see cref="HessianFreeOptions.MaxIterations"/> products, each about two backward
/// passes over the metric batch, and maps x back to W̄ shapes. The solve stops early at the relative tolerance, which
/// is what makes this a truncated Newton method: the step is exact in the Krylov directions of largest curvature.</para>
/// <para>A solver breakdown or non-finite value never throws: the last finite iterate is returned and
/// <see cref="LastReport"/> says what happened (callers such as a Levenberg–Marquardt damping policy should raise λ).</para>
/// <para>The output must stay valid (graph retained) until the step's last <see cref="Precondition"/> or
/// <see cref="Multiply"/>; the next <see cref="Update"/> releases this class's own graph.</para>
/// </remarks>
public sealed partial class HessianFreeCurvature : ICurvature
{
    private readonly IIterativeSolver _solver;
    private Tensor? _output;
    private ILikelihood? _likelihood;
    private IReadOnlyList<LayerStatistics> _statistics = Array.Empty<LayerStatistics>();
    private long _step;
    private ParameterLayout? _layout;
    private GgnVectorProduct? _product;
    private Tensor? _solution;
    // True after a solve refused for a non-finite gradient: the solution before it is still the next warm start.
    private bool _warmStartAfterFailure;

    /// <summary>The last solution is the next solve's start: it exists and was not cut short by a non-finite iterate.</summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNullWhen(true, nameof(_solution))]
    private bool HasWarmStart => _solution is not null && (LastReport?.Status != SolveStatus.NonFinite || _warmStartAfterFailure);
    private readonly KfacSolverPreconditioner? _kfac;
    private long _solves;

    /// <param name="options">Solver, iteration budget, tolerance, warm start and preconditioning; default <see cref="HessianFreeOptions"/>.</param>
    public HessianFreeCurvature(HessianFreeOptions? options = null)
    {
        Options = (options ?? new HessianFreeOptions()).Validate();
        _solver = IterativeSolver.Create(Options.Solver);
        if (Options.KfacPreconditioner) _kfac = new KfacSolverPreconditioner(Options.KfacPreconditionerOptions);
    }

    public HessianFreeOptions Options { get; }

    /// <summary>
    /// The last solve's report (iterations, residual, status), or null before the first. Its X is the flat solution in
    /// parameter order, owned by this object: valid until the next <see cref="Precondition"/> or <see cref="Dispose"/>.
    /// </summary>
    public SolveReport? LastReport { get; private set; }

    /// <summary>
    /// The unpreconditioned reference of the last solve (<see cref="HessianFreeOptions.ReferenceSolveEvery"/>), or null
    /// when the last solve had none.
    /// </summary>
    public ReferenceSolve? LastReference { get; private set; }

    /// <summary>G-vector products spent in reference solves (not in <see cref="TotalProducts"/>).</summary>
    public long ReferenceProducts { get; private set; }

    /// <summary>G-vector products so far, in solves, <see cref="Multiply"/> and <see cref="QuadraticForm"/> (the dominant cost: about two backward passes each).</summary>
    public long TotalProducts { get; private set; }

    /// <exception cref="InvalidOperationException">The batch carries no network output.</exception>
    public void Update(CurvatureBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var output = batch.Output ?? throw new InvalidOperationException(
            "Hessian-free needs the metric batch's network output with its graph (CurvatureBatch.Output is null)");
        _product?.Dispose();
        _product = null;
        _output = output;
        _likelihood = batch.Likelihood;
        _statistics = batch.Layers;
        _step = batch.Step;
        _kfac?.Update(batch);
    }

    /// <summary>Δ = (G + λI)⁻¹ g over all <paramref name="layers"/> jointly, by the configured Krylov solver.</summary>
    /// <param name="layers">Covered layers, in order.</param>
    /// <param name="gradients">W̄-shaped gradients (out × in'), one per layer.</param>
    /// <param name="damping">λ ≥ 0 (λ = 0 only with a nonsingular G, or with MINRES).</param>
    /// <returns>Fresh W̄-shaped tensors in the gradients' dtypes; finite for finite gradients. A gradient that holds ∞ or
    /// NaN has no natural gradient: the result is then that gradient itself (not finite, so the step's finiteness check
    /// rejects it, as it does for every other structure), <see cref="LastReport"/> says <see cref="SolveStatus.NonFinite"/>,
    /// and the warm start of the next solve is the previous finite solution.</returns>
    public IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping)
    {
        if (!(damping >= 0) || double.IsInfinity(damping))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, "damping must be a finite number ≥ 0");
        var product = Product(layers);
        var layout = _layout!;
        using var scope = NewDisposeScope();
        var b = layout.ToFlat(gradients);
        bool warm = Options.WarmStart && HasWarmStart;
        Tensor? x0 = warm ? _solution! * Options.WarmStartDecay : null;
        Func<Tensor, Tensor>? preconditioner = null;
        if (Options.DiagonalPreconditioner)
        {
            var d = DiagonalFisherPreconditioner.Denominator(layout, _statistics, damping, Options.DiagonalExponent, _step)?.to_type(b.dtype);
            if (d is not null) preconditioner = r => r / d;
        }
        if (_kfac is not null && damping > 0) preconditioner = r => _kfac.Apply(layout, r, damping);

        int products = 0;
        var report = _solver.Solve(v => { products++; return product.Multiply(v, damping); }, b, x0, Options.ToSolverOptions(), preconditioner);
        TotalProducts += products;
        LastReference = preconditioner is not null && Options.ReferenceSolveEvery > 0 && _solves % Options.ReferenceSolveEvery == 0
            ? SolveReference(product, b, x0, report.X, damping)
            : null;
        _solves++;

        // The solver answers a non-finite right-hand side with its (finite) start, x₀ or zero; applied, that would be an old
        // direction or no step presented as this gradient's natural gradient. One host read, on this failure path only.
        if (report.Status == SolveStatus.NonFinite && !b.isfinite().all().item<bool>())
        {
            _solution ??= zeros_like(b).DetachFromDisposeScope();   // the report's X must outlive this scope; a zero start is a cold start
            LastReport = report with { X = _solution };
            _warmStartAfterFailure = true;
            return gradients.Select(t => t.detach().clone().MoveToOuterDisposeScope()).ToList();
        }
        _warmStartAfterFailure = false;
        _solution?.Dispose();
        _solution = report.X.detach().clone().DetachFromDisposeScope();   // finite by the solver's contract
        LastReport = report with { X = _solution };

        var result = layout.ToMatrices(report.X);
        return result.Select((t, i) => t.to_type(gradients[i].dtype).MoveToOuterDisposeScope()).ToList();
    }

    /// <summary>
    /// The same system without the preconditioner, from the same start, to the true relative residual the preconditioned
    /// solution <paramref name="x"/> has (one product to measure it); bounded by 10 · MaxIterations.
    /// </summary>
    private ReferenceSolve? SolveReference(GgnVectorProduct product, Tensor b, Tensor? x0, Tensor x, double damping)
    {
        using var scope = NewDisposeScope();
        double bNorm = b.norm().ToDouble();
        double reached = product.Multiply(x, damping).sub_(b).norm().ToDouble() / bNorm;
        ReferenceProducts++;
        if (!(reached > 0 && reached < 1)) return null;         // b = 0, no progress, or a non-finite residual: nothing to compare
        int products = 0;
        var options = new SolverOptions { MaxIterations = 10 * Options.MaxIterations, RelativeTolerance = reached };
        var plain = _solver.Solve(v => { products++; return product.Multiply(v, damping); }, b, x0, options);
        ReferenceProducts += products;
        return new ReferenceSolve(plain.Iterations, reached, plain.RelativeResidual, plain.Status);
    }

    /// <summary>G v (no damping) for W̄-shaped <paramref name="vectors"/>: the predicted KL ½ΔᵀGΔ and quadratic models.</summary>
    public IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors)
    {
        var product = Product(layers);
        var layout = _layout!;
        using var scope = NewDisposeScope();
        var gv = product.Multiply(layout.ToFlat(vectors));
        TotalProducts++;
        return layout.ToMatrices(gv).Select((t, i) => t.to_type(vectors[i].dtype).MoveToOuterDisposeScope()).ToList();
    }

    /// <summary>
    /// vᵀGv = (1/m) Σᵢ (J_rᵢ v)ᵀ H_out (J_rᵢ v): one Jacobian-vector product and no transposed one, about half the cost
    /// of <see cref="Multiply"/> (counted as one product in <see cref="TotalProducts"/>).
    /// </summary>
    public Tensor QuadraticForm(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors)
    {
        var product = Product(layers);
        var layout = _layout!;
        using var scope = NewDisposeScope();
        var jv = product.JacobianVectorProduct(layout.ToFlat(vectors));
        TotalProducts++;
        var hjv = _likelihood!.MultiplyOutputFisher(_output!.detach(), jv);
        return jv.mul(hjv).sum(ScalarType.Float64).div_((double)product.BatchSize).MoveToOuterDisposeScope();
    }

    /// <summary>The step's G-vector product over <paramref name="layers"/> (built on first use after each <see cref="Update"/>).</summary>
    public GgnVectorProduct Product(IReadOnlyList<ILayerAdapter> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (_output is null || _likelihood is null)
            throw new InvalidOperationException("no metric batch yet: call Update first");
        if (_layout is null || !_layout.Matches(layers))
        {
            _layout = new ParameterLayout(layers);
            _product?.Dispose();
            _product = null;
            _solution?.Dispose();              // a warm start in another layout would be meaningless
            _solution = null;
            LastReport = null;
            _warmStartAfterFailure = false;
        }
        return _product ??= new GgnVectorProduct(_output, _layout.Parameters, _likelihood,
            _layout.Layers.SelectMany(l => l.Parameters.Select(_ => $"a parameter of layer '{l.Name}' ({l.KindName})")).ToList());
    }

    /// <summary>Releases the double-backward graph and the warm-start solution.</summary>
    public void Dispose()
    {
        _kfac?.Dispose();
        _product?.Dispose();
        _product = null;
        _solution?.Dispose();
        _solution = null;
        LastReport = null;
        LastReference = null;
        _output = null;
        _statistics = Array.Empty<LayerStatistics>();
    }
}
