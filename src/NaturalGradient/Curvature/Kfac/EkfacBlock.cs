using NaturalGradient.Numerics;
using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// Eigenvalue-corrected K-FAC block (George et al. 2018, "Fast Approximate Natural Gradient Descent in a
/// Kronecker-factored Eigenbasis"): K-FAC's eigenbasis Q_G ⊗ Q_A with the diagonal re-estimated as the second
/// moment of the projected per-sample gradients, S = w Σₛ Σᵢ (Q_Gᵀ gᵢₛ Q_A)² (elementwise square; the same weights
/// as the metric M = w Σ gᵢₛgᵢₛᵀ), so the block is B = (Q_G ⊗ Q_A) diag(vec S) (Q_G ⊗ Q_A)ᵀ and
/// Δ = Q_G [(Q_Gᵀ g Q_A) ⊘ (S + D_λ)] Q_Aᵀ, with D_λ = λ (eigenbasis damping: Δ = (B + λI)⁻¹ g) or, by default, the
/// factored damping D_λ = π√λ eᴳ1ᵀ + (√λ/π) 1eᴬᵀ + λ (<see cref="KfacOptions.DampingMode"/>).
/// </summary>
/// <remarks>
/// <para>S is the diagonal of M in the Kronecker eigenbasis, so B is the Frobenius-closest matrix to M with that
/// eigenbasis (George et al. 2018 §3); with S = eᴳeᴬᵀ it is K-FAC's G ⊗ A.</para>
/// <para>Schedule (<see cref="KfacOptions"/>): A, G and S absorb a batch (running average with β) on steps with
/// s mod T_f = 0; the eigenbasis is recomputed from A and G on steps with s mod T_inv = 0, before S is updated in
/// that same call. When the basis changes, S restarts from the current batch in the new basis, whether or not the
/// factors are due on that step (a running average across bases would mix coordinates that no longer correspond, and
/// an S kept from the old basis would divide the new basis's coordinates by the old one's; with T_inv = 1 the former
/// made EKFAC diverge on a teacher–student regression in our tests). InverseMethod does not apply: EKFAC always uses
/// eigh.</para>
/// <para>Damping: <see cref="KfacDampingMode.Eigenbasis"/> adds λ to S. <see cref="KfacDampingMode.Factored"/> (the
/// default) adds the terms by which K-FAC's (G + √λ/π I) ⊗ (A + π√λ I) exceeds G ⊗ A in the eigenbasis, so that EKFAC
/// with S = eᴳeᴬᵀ is K-FAC with factored damping. The difference matters where S is small: A estimated from m examples
/// has rank ≤ m, so with a basis held for T_inv steps the next batches' gradients have components where S ≈ 0, which
/// λ = 1e-3 alone amplifies a thousandfold (EKFAC diverged within 4 steps on Fashion-MNIST, MLP 784-512-512-10, batch
/// 256); the factored terms damp them as K-FAC does (docs/PERFORMANCE.md).</para>
/// <para>Cost of S per update: for T = 1 (Linear) the projected gradient is (Q_Gᵀδ)(Q_Aᵀā)ᵀ, so
/// S = w Σᵢ [Σₛ (Q_Gᵀδᵢₛ)²] [(Q_Aᵀāᵢ)²]ᵀ is formed from the projections alone in O(n out² + m in'² + m out in');
/// for T &gt; 1 (Conv2d) the per-sample gradients (n × out × in') are formed and projected, O(n out in' (out + in')).</para>
/// <para>Index layers (Embedding; Embeddings of one table tied together: <see cref="DiagonalActivation"/>): A =
/// diag(token counts)/m is kept as a length-V vector and its eigenbasis is the identity (no eigh), so the projection is
/// by Q_G alone, Q_Gᵀ gᵢₛ, and S[:, k] = w Σₛ Σᵢ (Q_Gᵀ Σ_{t: kᵢₜ = k} δᵢₛₜ)², formed from the sums of the projected δ over
/// each (example, token) pair that occurs: O(n T out + V out), never n × out × V or V².</para>
/// </remarks>
public sealed partial class EkfacBlock : ICurvatureBlock, IFactorizingBlock
{
    private readonly RunningAverage _a = new(), _g = new(), _s = new();
    private readonly KroneckerEigenbasis _eigen;
    private bool _disposed;
    private double _pi = 1.0;

    /// <param name="layer">The layer this block covers (gives W̄'s shape out × in').</param>
    /// <param name="options">Decay and periods; <c>new KfacOptions()</c> if null. Validated here.</param>
    public EkfacBlock(ILayerAdapter layer, KfacOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(layer);
        Layer = layer;
        // EKFAC always decomposes: the inverse method does not apply, so it cannot conflict with the damping mode.
        // The eigenbasis period defaults to EKFAC's own (20), not K-FAC's.
        Options = (options ?? new KfacOptions()).WithInversePeriod(KfacOptions.DefaultEigenbasisUpdatePeriod) with { InverseMethod = KfacInverseMethod.Eigen };
        Options.Validate();
        _eigen = new KroneckerEigenbasis(DiagonalActivation.Applies(layer));
    }

    public ILayerAdapter Layer { get; }
    public KfacOptions Options { get; }

    /// <summary>True once the block has absorbed statistics.</summary>
    public bool IsInitialized => _s.HasValue;

    /// <summary>How many times the eigenbasis has been (re)computed.</summary>
    public int InverseRefreshCount { get; private set; }

    /// <summary>The current A (in' × in'; for an index layer its diagonal, a length-in' vector), as a fresh alias.</summary>
    public Tensor ActivationFactor => Current(_a).alias();

    /// <summary>The current G (out × out), as a fresh alias.</summary>
    public Tensor OutputGradientFactor => Current(_g).alias();

    /// <summary>
    /// Q_A (in' × in', eigenvectors as columns), as a fresh alias; for an index layer the identity, formed on access.
    /// </summary>
    /// <exception cref="InvalidOperationException">An index layer wider than <see cref="KfacOptions.MaxFactorDimension"/> (its identity is not formed).</exception>
    public Tensor ActivationBasis
    {
        get
        {
            Current(_s);
            if (_eigen.IsDiagonalActivation && Layer.InputDim > Options.MaxFactorDimension)
                throw new InvalidOperationException(
                    $"EKFAC block of layer '{Layer.Name}': A is diagonal, so Q_A is the {Layer.InputDim} × {Layer.InputDim} identity; it is not formed above MaxFactorDimension = {Options.MaxFactorDimension}");
            return _eigen.ActivationBasis.alias();
        }
    }

    /// <summary>Q_G (out × out), as a fresh alias.</summary>
    public Tensor OutputGradientBasis { get { Current(_s); return _eigen.OutputGradientBasis.alias(); } }

    /// <summary>The scaling S (out × in', W̄-shaped), as a fresh alias.</summary>
    public Tensor Scaling => Current(_s).alias();

    /// <summary>Absorbs one step's statistics into A, G and S and refreshes the eigenbasis, on their schedules.</summary>
    public void Update(LayerStatistics statistics, long step) => FactorizationQueue.Run(queue => Absorb(statistics, step, queue));

    /// <inheritdoc cref="IFactorizingBlock.Update"/>
    void IFactorizingBlock.Update(LayerStatistics statistics, long step, FactorizationQueue queue) => Absorb(statistics, step, queue);

    /// <summary>EKFAC has no damped inverses: its eigenbasis is refreshed in the update.</summary>
    void IFactorizingBlock.QueueSolve(double damping, FactorizationQueue queue) { }

    private void Absorb(LayerStatistics statistics, long step, FactorizationQueue queue)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Statistics(Layer, statistics, step);
        bool first = !_s.HasValue, factorsDue = first || Options.FactorsDue(step);
        if (factorsDue)
        {
            using var scope = NewDisposeScope();
            KroneckerFactors.AccumulateActivation(_a, statistics, Options.WeightSharing, Options.FactorDecay, Options.FactorPrecision);
            KroneckerFactors.AccumulateOutputGradient(_g, statistics, Options.WeightSharing, Options.FactorDecay, Options.FactorPrecision);
        }
        // A running average of S across different bases mixes coordinates that no longer correspond: when the
        // basis changes, S restarts from this batch's second moments in the new basis, also on a step whose factors
        // are not due (with T_f = 3 and T_inv = 20 that is two refreshes in three).
        if (first || Options.InverseDue(step))
        {
            _eigen.QueueRefresh(_a.Value!, _g.Value!, queue, () =>
            {
                using (NewDisposeScope()) _pi = FactoredDamping.Pi(_a.Value!, _g.Value!);
                InverseRefreshCount++;
                AbsorbScaling(statistics, restart: true);
            });
        }
        else if (factorsDue)
        {
            AbsorbScaling(statistics, restart: false);
        }
    }

    /// <summary>
    /// S from this batch's projected second moments: restarted (a new basis) or absorbed into the running average (with
    /// one GEMM into S for rank-one statistics).
    /// </summary>
    private void AbsorbScaling(LayerStatistics statistics, bool restart)
    {
        using var scope = NewDisposeScope();
        if (!restart && statistics.IsRankOne)
        {
            // S ← βS + (1 − β) w (Σₛ(δQ_G)²)ᵀ (āQ_A)²: one GEMM into the long-lived S.
            var (deltaSquares, actSquares) = ProjectedSquares(statistics);
            if (_s.TryAccumulateGram(deltaSquares, actSquares, statistics.Weight, Options.FactorDecay, Options.FactorPrecision)) return;
        }
        if (restart) _s.Replace(ProjectedSecondMoments(statistics).InDtype(_a.Value!.dtype));
        else _s.Update(ProjectedSecondMoments(statistics).InDtype(_a.Value!.dtype), Options.FactorDecay);
    }

    /// <summary>
    /// For T = 1: the m × out matrix Σₛ (δᵢₛᵀQ_G)² and the m × in' matrix (āᵢᵀQ_A)² (element-wise squares), whose
    /// product w (·)ᵀ(·) is S, since the projected per-sample gradient is (Q_Gᵀδᵢₛ)(Q_Aᵀāᵢ)ᵀ.
    /// </summary>
    private (Tensor DeltaSquares, Tensor ActivationSquares) ProjectedSquares(LayerStatistics statistics)
    {
        var qa = _eigen.ActivationBasis;
        var qg = _eigen.OutputGradientBasis;
        var delta = statistics.OutputGradients.NoGraph().squeeze(2).InDtype(qg.dtype);                  // s × m × out
        if (statistics.Samples == 1)
        {
            // D Q_G and Ā Q_A are kept for this step's PreconditionMeanGradient: Q_Gᵀ ḡ Q_A = w (D Q_G)ᵀ(Ā Q_A).
            // With bfloat16 solves they are bfloat16 products, kept in bfloat16 for that product and squared in float32.
            var deltaProjected = _eigen.ProjectRows(delta.squeeze(0), output: true, LowPrecision);                             // m × out
            var actProjected = _eigen.ProjectRows(statistics.ActivationRows().NoGraph().InDtype(qa.dtype), output: false, LowPrecision); // m × in'
            // They live in the caller's dispose scope (the step's), not in the block: used only while still valid.
            _projections = new StepProjections(statistics, deltaProjected.alias().MoveToOuterDisposeScope(), actProjected.alias().MoveToOuterDisposeScope());
            return (deltaProjected.InDtype(qg.dtype).square(), actProjected.InDtype(qa.dtype).square());
        }
        var deltaSquares = Squared(delta.MatMul(qg)).sum(dim: 0);                                       // m × out
        var actSquares = Squared(statistics.Activations.NoGraph().squeeze(1).InDtype(qa.dtype).mm(qa)); // m × in'
        return (deltaSquares, actSquares);
    }

    /// <summary>
    /// The projections D Q_G and Ā Q_A of one update's statistics, in the dispose scope that was current at the update
    /// (not owned by the block): valid until that scope ends.
    /// </summary>
    private sealed record StepProjections(LayerStatistics Statistics, Tensor Delta, Tensor Activations)
    {
        public bool IsValid => !Delta.IsInvalid && !Activations.IsInvalid;
    }

    private StepProjections? _projections;

    /// <summary>x ∘ x in place (x is a fresh product).</summary>
    private static Tensor Squared(Tensor x) => x.mul_(x);

    /// <summary>w Σₛ Σᵢ (Q_Gᵀ gᵢₛ Q_A)² in the current eigenbasis (out × in').</summary>
    private Tensor ProjectedSecondMoments(LayerStatistics statistics)
    {
        var qg = _eigen.OutputGradientBasis;
        if (statistics.Tokens is not null)
        {
            // Q_A = I: column k of Q_Gᵀ gᵢₛ is Q_Gᵀ Σ_{t: kᵢₜ = k} δᵢₛₜ; square and sum over the (example, token) pairs.
            var projected = statistics.FlatOutputGradients().NoGraph().InDtype(qg.dtype).MatMul(qg);   // n × T × out
            return TokenGradients.SquaredSum(statistics.PairedTokens()!, projected, Layer.InputDim).mul_(statistics.Weight);
        }
        var qa = _eigen.ActivationBasis;
        if (statistics.IsRankOne)
        {
            // gᵢₛ = δᵢₛ āᵢᵀ ⇒ (Q_Gᵀ gᵢₛ Q_A)² = (Q_Gᵀδᵢₛ)² ((Q_Aᵀāᵢ)²)ᵀ; sum the δ part over the s samples first.
            var (deltaSquares, actSquares) = ProjectedSquares(statistics);
            return deltaSquares.t().mm(actSquares).mul_(statistics.Weight);
        }
        var perSample = statistics.PerSampleGradients().NoGraph().InDtype(qa.dtype);          // n × out × in'
        return _eigen.Project(perSample).square().sum(dim: 0).mul_(statistics.Weight);
    }

    /// <summary>Δ = Q_G [(Q_Gᵀ g Q_A) ⊘ (S + λ)] Q_Aᵀ. Returns a fresh tensor.</summary>
    public Tensor Precondition(Tensor gradient, double damping)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Matrix(Layer, gradient, nameof(gradient));
        KroneckerBlockGuard.Damping(damping);
        if (_decompositionDue)
            throw new InvalidOperationException($"EKFAC block of layer '{Layer.Name}': its eigendecomposition is due (Decompose or ImportInverse first)");
        var s = Current(_s);
        using var scope = NewDisposeScope();
        var projected = _eigen.Project(gradient.NoGraph().InDtype(s.dtype), LowPrecision);
        return scope.MoveToOuter(_eigen.Unproject(projected.div_(Denominator(s, damping)), LowPrecision).InDtype(gradient.dtype));
    }

    /// <summary>
    /// Δ for the statistics' mean gradient ḡ = w DᵀĀ (T = 1, one gradient sample): the projection Q_Gᵀ ḡ Q_A is formed as
    /// w (D Q_G)ᵀ(Ā Q_A) from the projections this step's update of S already made (2m·out·in' flops instead of
    /// 2·out·in'(out + in')), or from D and Ā when S was not updated and that is cheaper; then divided and projected back
    /// as in <see cref="Precondition"/>. Null when neither route is cheaper than the products with ḡ.
    /// </summary>
    public Tensor? PreconditionMeanGradient(LayerStatistics statistics, double damping) =>
        PreconditionMeanGradient(statistics, damping, innerProduct: false)?.Direction;

    /// <summary>
    /// As <see cref="PreconditionMeanGradient(LayerStatistics, double)"/>; with <paramref name="innerProduct"/>, also
    /// ⟨Δ, ḡ⟩ = Σ (Y ∘ E) ∘ Y from the divided projection Y = (Q_Gᵀ ḡ Q_A) ⊘ E and the divisor E (element-wise: the bases
    /// are orthogonal), with no product with ḡ; except with bfloat16 solves, whose projection X̃ carries bfloat16's
    /// rounding, which Σ X̃ ∘ (X̃ ⊘ E) would count twice (an upward bias that grows as λ shrinks): the caller forms ḡ.
    /// </summary>
    public MeanGradientDirection? PreconditionMeanGradient(LayerStatistics statistics, double damping, bool innerProduct)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Damping(damping);
        var s = Current(_s);
        if (!ReferenceEquals(statistics.Adapter, Layer)) return null;
        long m = statistics.BatchSize, outputs = Layer.OutputDim, inputs = Layer.InputDim;
        using var scope = NewDisposeScope();
        Tensor projected;
        if (_projections is { } p && ReferenceEquals(p.Statistics, statistics) && p.IsValid && m < outputs + inputs)
            projected = p.Delta.t().mm(p.Activations).InDtype(s.dtype).mul_(statistics.Weight);
        else if (KroneckerFactors.MeanGradientRouteIsCheaper(m, outputs, inputs) && KroneckerFactors.MeanGradientRows(statistics, s.dtype) is { } rows)
            projected = _eigen.ProjectMeanGradient(rows.D, rows.A, statistics.Weight, LowPrecision);
        else
            return null;
        KroneckerFactors.CountMeanGradientSolve();
        var denominator = Denominator(s, damping);
        var divided = projected.div_(denominator);
        Tensor? inner = null;
        if (innerProduct && !_eigen.ChangesBasisInBfloat16(LowPrecision, s))
        {
            inner = scope.MoveToOuter(KroneckerFactors.EigenbasisInnerProduct(divided, denominator));
            KroneckerFactors.CountMeanGradientInnerProduct();
        }
        return new MeanGradientDirection(scope.MoveToOuter(_eigen.Unproject(divided, LowPrecision).InDtype(statistics.Dtype)), inner);
    }

    /// <summary>
    /// The divisor of the projected gradient: S + λ (eigenbasis damping), or, for factored damping,
    /// S + π√λ eᴳ1ᵀ + (√λ/π) 1eᴬᵀ + λ: the damping terms that (G + √λ/π I) ⊗ (A + π√λ I) adds to G ⊗ A in the
    /// eigenbasis, so that with S = eᴳeᴬᵀ the block is exactly K-FAC's factored-damped block.
    /// </summary>
    private Tensor Denominator(Tensor s, double damping)
    {
        if (Options.DampingMode == KfacDampingMode.Eigenbasis) return s.add(damping);
        var (shiftA, shiftG) = FactoredDamping.Shifts(_pi, damping);
        var eg = _eigen.OutputGradientEigenvalues.InDtype(s.dtype).unsqueeze(1);
        var ea = _eigen.ActivationEigenvalues.InDtype(s.dtype).unsqueeze(0);
        return s.add(eg, alpha: shiftA).add_(ea, alpha: shiftG).add_(damping);
    }

    /// <summary>B vec(v) = vec(Q_G [S ∘ (Q_Gᵀ v Q_A)] Q_Aᵀ), no damping.</summary>
    public Tensor Multiply(Tensor v)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Matrix(Layer, v, nameof(v));
        var s = Current(_s);
        using var scope = NewDisposeScope();
        var projected = _eigen.Project(v.NoGraph().InDtype(s.dtype));
        return scope.MoveToOuter(_eigen.Unproject(projected.mul_(s)).InDtype(v.dtype));
    }

    /// <summary>tr(B) / p = mean(S).</summary>
    public double MeanCurvature() => Current(_s).mean().ToDouble();

    /// <summary>The dense block (Q_G ⊗ Q_A) diag(vec S) (Q_G ⊗ Q_A)ᵀ (p × p). Tests and small layers only.</summary>
    public Tensor ToDense()
    {
        ThrowIfDisposed();
        return _eigen.Dense(Current(_s));
    }

    /// <summary>Replaces S by K-FAC's eigenvalue products eᴳeᴬᵀ, after which the block is K-FAC's G ⊗ A damped in its eigenbasis.</summary>
    internal void UseKroneckerScaling()
    {
        Current(_s);
        _s.Replace(_eigen.EigenvalueProducts());
    }

    /// <summary>True when the solve's products run in bfloat16 (<see cref="KfacOptions.InversePrecision"/>; float32 factors only).</summary>
    private bool LowPrecision => Options.InversePrecision == KfacInversePrecision.Bfloat16;

    private Tensor Current(RunningAverage value) =>
        value.Value ?? throw new InvalidOperationException($"EKFAC block of layer '{Layer.Name}' has no statistics yet: call Update first");

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _a.Dispose(); _g.Dispose(); _s.Dispose(); _eigen.Dispose();
        _projections = null;
    }
}
