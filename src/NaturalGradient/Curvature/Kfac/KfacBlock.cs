using NaturalGradient.Numerics;
using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// K-FAC block of a Linear or Conv2d layer (Martens &amp; Grosse 2015; Grosse &amp; Martens 2016 for convolutions):
/// the layer's metric block is approximated by G ⊗ A (row-major vec of W̄ = [W b]), with running averages of
/// A = (1/m) Σᵢ Σₜ āᵢₜāᵢₜᵀ and G = (w/T) Σₛ Σᵢ Σₜ δᵢₛₜδᵢₛₜᵀ (<see cref="KroneckerFactors"/>), and is applied as
/// Δ = G⁻¹ ∇W̄ A⁻¹ with damping, never forming the Kronecker product (except in <see cref="ToDense"/>).
/// </summary>
/// <remarks>
/// <para>Damping (<see cref="KfacOptions.DampingMode"/>): Factored gives Δ = (G + √λ/π I)⁻¹ g (A + π√λ I)⁻¹;
/// Eigenbasis gives Δ = Q_G [(Q_Gᵀ g Q_A) ⊘ (eᴳ eᴬᵀ + λ)] Q_Aᵀ = (G ⊗ A + λI)⁻¹ g exactly.</para>
/// <para>Schedule: factors absorb a batch on steps s with s mod T_f = 0; eigendecompositions are recomputed in
/// <see cref="Update"/> on steps with s mod T_inv = 0. The damped inverses (A + π√λ I)⁻¹ and (G + √λ/π I)⁻¹ of
/// factored damping fall due on the same steps but, since they depend on λ, are built at the next
/// <see cref="Precondition"/> (Cholesky: from the factors at that moment; Eigen: from the cached eigenbasis), and
/// again whenever λ differs from the one they were built for; applying them is two products per call. Exact
/// (eigenbasis) damping projects, divides and projects back: four products per call. Between refreshes Precondition
/// uses the cached inverses, while <see cref="Multiply"/> and <see cref="ToDense"/> always use the current factors.</para>
/// <para>Precision: the factors, their eigendecompositions and inverses keep the dtype of the statistics (float32 for a
/// float32 model); a failed float32 Cholesky or eigendecomposition is retried in float64. With
/// <see cref="KfacOptions.InversePrecision"/> = Bfloat16 the solve's products run by bfloat16 GEMMs on copies of the
/// inverses (or eigenbases) and return float32.</para>
/// <para>Memory: A and G (in'² + out²) plus their inverses and, for Eigen, their eigenbases (the same again each).</para>
/// <para>Index layers (Embedding; Embeddings of one table tied together: <see cref="DiagonalActivation"/>): A =
/// diag(token counts)/m is kept as its diagonal a (length V = in'), averaged, damped and inverted as a vector
/// ((A + π√λ I)⁻¹ = 1 / (a + π√λ)) and applied as a column scaling, Δ = (G + √λ/π I)⁻¹ g diag(1 / (a + π√λ)); its
/// eigenbasis is the identity. Memory O(V + out²) beside the gradient, never V².</para>
/// </remarks>
public sealed partial class KfacBlock : ICurvatureBlock, IFactorizingBlock
{
    private readonly RunningAverage _a = new(), _g = new();
    private readonly KroneckerEigenbasis _eigen;
    private readonly FactoredInverse _inverse;
    private bool _inverseDue = true, _disposed;
    private double _pi = 1.0;

    /// <param name="layer">The layer this block covers (gives W̄'s shape out × in').</param>
    /// <param name="options">Hyperparameters; <c>new KfacOptions()</c> if null. Validated here.</param>
    public KfacBlock(ILayerAdapter layer, KfacOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        Layer = layer;
        Options = (options ?? new KfacOptions()).WithInversePeriod(KfacOptions.DefaultInverseUpdatePeriod).Validate();
        _eigen = new KroneckerEigenbasis(DiagonalActivation.Applies(layer));
        _inverse = new FactoredInverse(Options.InversePrecision);
    }

    public ILayerAdapter Layer { get; }
    public KfacOptions Options { get; }

    /// <summary>True once the block has absorbed statistics.</summary>
    public bool IsInitialized => _a.HasValue;

    /// <summary>How many times the inverses (Cholesky) or eigendecompositions have been (re)computed.</summary>
    public int InverseRefreshCount { get; private set; }

    /// <summary>
    /// The current A (in' × in'; for an index layer its diagonal, a length-in' vector: <see cref="DiagonalActivation"/>),
    /// as a fresh alias in the caller's dispose scope.
    /// </summary>
    public Tensor ActivationFactor => Current(_a).alias();

    /// <summary>The current G (out × out), as a fresh alias in the caller's dispose scope.</summary>
    public Tensor OutputGradientFactor => Current(_g).alias();

    /// <summary>Absorbs one step's statistics into A and G, and refreshes the inverses, on their schedules.</summary>
    public void Update(LayerStatistics statistics, long step) => FactorizationQueue.Run(queue => Absorb(statistics, step, queue));

    /// <inheritdoc cref="IFactorizingBlock.Update"/>
    void IFactorizingBlock.Update(LayerStatistics statistics, long step, FactorizationQueue queue) => Absorb(statistics, step, queue);

    private void Absorb(LayerStatistics statistics, long step, FactorizationQueue queue)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Statistics(Layer, statistics, step);
        bool first = !_a.HasValue;
        using var scope = NewDisposeScope();
        if (first || Options.FactorsDue(step))
        {
            KroneckerFactors.AccumulateActivation(_a, statistics, Options.WeightSharing, Options.FactorDecay, Options.FactorPrecision);
            KroneckerFactors.AccumulateOutputGradient(_g, statistics, Options.WeightSharing, Options.FactorDecay, Options.FactorPrecision);
        }
        if (!first && !Options.InverseDue(step)) return;
        _inverseDue = true;
        if (Options.InverseMethod == KfacInverseMethod.Cholesky) return;
        _eigen.QueueRefresh(_a.Value!, _g.Value!, queue, () =>
        {
            using (NewDisposeScope()) _pi = FactoredDamping.Pi(_a.Value!, _g.Value!);
            InverseRefreshCount++;
        });
    }

    /// <inheritdoc/>
    void IFactorizingBlock.QueueSolve(double damping, FactorizationQueue queue)
    {
        ThrowIfDisposed();
        if (Options.DampingMode != KfacDampingMode.Factored || Options.InverseMethod != KfacInverseMethod.Cholesky) return;
        if (!_a.HasValue || InverseCurrent(damping)) return;
        KroneckerBlockGuard.Damping(damping);
        QueueCholeskyInverse(damping, queue);
    }

    /// <summary>True when the cached damped inverses were built for <paramref name="damping"/> and are not due.</summary>
    private bool InverseCurrent(double damping) => !_inverseDue && _inverse.Damping == damping;

    /// <summary>The Cholesky inverses of the damped factors for <paramref name="damping"/>, added to <paramref name="queue"/>.</summary>
    private void QueueCholeskyInverse(double damping, FactorizationQueue queue) =>
        _inverse.QueueCholesky(_a.Value!, _g.Value!, damping, queue, () =>
        {
            InverseRefreshCount++;
            _inverseDue = false;
        });

    /// <summary>Δ for the W̄-shaped gradient g under the configured damping (see the class remarks). Returns a fresh tensor.</summary>
    public Tensor Precondition(Tensor gradient, double damping)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Matrix(Layer, gradient, nameof(gradient));
        KroneckerBlockGuard.Damping(damping);
        if (_decompositionDue)
            throw new InvalidOperationException($"K-FAC block of layer '{Layer.Name}': its eigendecomposition is due (Decompose or ImportInverse first)");
        var a = Current(_a);
        using var scope = NewDisposeScope();
        var g = gradient.NoGraph().InDtype(a.dtype);
        Tensor result;
        if (Options.DampingMode == KfacDampingMode.Factored)
        {
            EnsureFactoredInverse(damping);
            result = _inverse.Apply(g);
        }
        else
        {
            // Exact damping 1 / (eᴳeᴬᵀ + λ) does not factor: project, divide, project back (four products).
            result = _eigen.Unproject(_eigen.Project(g, LowPrecision).div_(_eigen.EigenvalueProducts().add_(damping)), LowPrecision);
        }
        return scope.MoveToOuter(result.InDtype(gradient.dtype));
    }

    /// <summary>
    /// Δ for the statistics' mean gradient ḡ = w DᵀĀ (T = 1, one gradient sample), formed from D and Ā: factored damping
    /// w (D (G + √λ/π I)⁻¹)ᵀ(Ā (A + π√λ I)⁻¹), eigenbasis damping Q_G [(w (D Q_G)ᵀ(Ā Q_A)) ⊘ (eᴳeᴬᵀ + λ)] Q_Aᵀ. Taken only
    /// when it costs fewer flops than the products with ḡ (m(out² + in'² + out·in') &lt; out·in'(out + in'), i.e. a batch
    /// small against the layer); null otherwise.
    /// </summary>
    public Tensor? PreconditionMeanGradient(LayerStatistics statistics, double damping) =>
        PreconditionMeanGradient(statistics, damping, innerProduct: false)?.Direction;

    /// <summary>
    /// As <see cref="PreconditionMeanGradient(LayerStatistics, double)"/>; with <paramref name="innerProduct"/>, also
    /// ⟨Δ, ḡ⟩: with factored damping w² Σ (P Dᵀ) ∘ (Q Āᵀ) from the route's P = D (G + √λ/π I)⁻¹ and Q = Ā (A + π√λ I)⁻¹
    /// (two m × m Grams, 2m²(out + in') flops, taken when fewer than forming ḡ, 2m·out·in'); with eigenbasis damping
    /// Σ (Y ∘ (eᴳeᴬᵀ + λ)) ∘ Y from the divided projection Y (element-wise), except with bfloat16 solves: there the
    /// projection X̃ carries bfloat16's rounding, which Σ X̃ ∘ (X̃ ⊘ E) would count twice (an upward bias of ⟨Δ, ḡ⟩ that
    /// grows as λ shrinks), and the caller forms ḡ.
    /// </summary>
    public MeanGradientDirection? PreconditionMeanGradient(LayerStatistics statistics, double damping, bool innerProduct)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Damping(damping);
        var a = Current(_a);
        if (!ReferenceEquals(statistics.Adapter, Layer) || !KroneckerFactors.MeanGradientRouteIsCheaper(statistics.BatchSize, Layer.OutputDim, Layer.InputDim))
            return null;
        using var scope = NewDisposeScope();
        if (KroneckerFactors.MeanGradientRows(statistics, a.dtype) is not { } rows) return null;
        var (d, abar) = rows;
        Tensor result;
        Tensor? inner = null;
        if (Options.DampingMode == KfacDampingMode.Factored)
        {
            EnsureFactoredInverse(damping);
            bool grams = innerProduct && KroneckerFactors.GramInnerProductIsCheaper(statistics.BatchSize, Layer.OutputDim, Layer.InputDim);
            (result, inner) = _inverse.ApplyToMeanGradient(d, abar, statistics.Weight, grams);
        }
        else
        {
            var denominator = _eigen.EigenvalueProducts().add_(damping);
            var divided = _eigen.ProjectMeanGradient(d, abar, statistics.Weight, LowPrecision).div_(denominator);
            if (innerProduct && !_eigen.ChangesBasisInBfloat16(LowPrecision, d)) inner = KroneckerFactors.EigenbasisInnerProduct(divided, denominator);
            result = _eigen.Unproject(divided, LowPrecision);
        }
        KroneckerFactors.CountMeanGradientSolve();
        if (inner is not null) KroneckerFactors.CountMeanGradientInnerProduct();
        return new MeanGradientDirection(scope.MoveToOuter(result.InDtype(statistics.Dtype)), inner is null ? null : scope.MoveToOuter(inner));
    }

    /// <summary>
    /// Both inverse methods end as two cached matrices, applied with two products; they are rebuilt when due and when λ
    /// changes (a Cholesky refactorisation, or two products per factor from the eigenbasis).
    /// </summary>
    private void EnsureFactoredInverse(double damping)
    {
        if (InverseCurrent(damping)) return;
        if (Options.InverseMethod == KfacInverseMethod.Cholesky)
        {
            FactorizationQueue.Run(queue => QueueCholeskyInverse(damping, queue));
            return;
        }
        _inverse.RefreshEigen(_eigen, _pi, damping);
        _inverseDue = false;
    }

    /// <summary>(G ⊗ A) vec(v) = vec(G v A), with the current factors and no damping.</summary>
    public Tensor Multiply(Tensor v)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Matrix(Layer, v, nameof(v));
        var a = Current(_a);
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(KroneckerFactors.Multiply(_g.Value!, a, v.NoGraph().InDtype(a.dtype)).InDtype(v.dtype));
    }

    /// <summary>tr(G ⊗ A) / p = tr(G) tr(A) / (out · in').</summary>
    public double MeanCurvature() =>
        Current(_g).trace().ToDouble() * DiagonalActivation.Trace(Current(_a)).ToDouble() / (Layer.OutputDim * (double)Layer.InputDim);

    /// <summary>The dense block G ⊗ A (p × p, p = out · in'). Tests and small layers only.</summary>
    public Tensor ToDense()
    {
        ThrowIfDisposed();
        return KroneckerFactors.Dense(Current(_g), Current(_a));
    }

    /// <summary>True when the solve's products run in bfloat16 (<see cref="KfacOptions.InversePrecision"/>; float32 factors only).</summary>
    private bool LowPrecision => Options.InversePrecision == KfacInversePrecision.Bfloat16;

    private Tensor Current(RunningAverage factor) =>
        factor.Value ?? throw new InvalidOperationException($"K-FAC block of layer '{Layer.Name}' has no statistics yet: call Update first");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _a.Dispose(); _g.Dispose(); _eigen.Dispose(); _inverse.Dispose();
    }
}
