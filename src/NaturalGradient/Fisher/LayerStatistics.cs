using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Fisher;

/// <summary>
/// One layer's ingredients for every curvature method, from one batch: the activations ā (m × T × in'),
/// the per-example output gradients δ for s "gradient samples" (s × m × T × out), and the weight w such that
/// the layer's metric is M = w Σₛ Σᵢ gᵢₛ gᵢₛᵀ with gᵢₛ = vec(Σₜ δᵢₛₜ āᵢₜᵀ) (row-major vec of W̄).
/// </summary>
/// <remarks>
/// <para>Empirical Fisher: s = 1, w = 1/m (seed 000 eq 37). Monte-Carlo Fisher: s = k sampled targets, w = 1/(m k).
/// Exact Fisher (GGN): s = columns of the output-Fisher factor B, w = 1/m (seed 001 §7).</para>
/// <para>Index layers (Embedding) carry their token indices (<see cref="Tokens"/>, m × T) instead of one-hot
/// activations (<see cref="FromTokens"/>): per-example gradients, diagonals and TENGraD's products are formed from
/// the indices, so no m × T × V tensor exists. <see cref="Activations"/> still returns the one-hot rows when a method
/// asks for them (K-BFGS), formed on each access.</para>
/// <para>Activations may also depend on the gradient sample (s × m × T × in'): a tensor tied across layers in transposed
/// layouts (<see cref="TiedLayerAdapter"/>) has the output gradient of one use on its activation side.</para>
/// </remarks>
public sealed class LayerStatistics
{
    private readonly Tensor? _activations, _outputGradients;
    private readonly ScalarType _dtype;
    // Shapes read once: a tensor's shape is a native call, and the blocks ask for m, T, s and in' many times per step.
    private readonly long[] _outputGradientShape;
    private readonly long[]? _activationShape;

    /// <param name="adapter">The layer.</param>
    /// <param name="activations">ā: m × T × in', or s × m × T × in' when it depends on the gradient sample.</param>
    /// <param name="outputGradients">δ: s × m × T × out.</param>
    /// <param name="weight">w of M = w Σ g gᵀ.</param>
    /// <exception cref="ArgumentException">A tensor has the wrong number of dimensions.</exception>
    public LayerStatistics(ILayerAdapter adapter, Tensor activations, Tensor outputGradients, double weight)
    {
        _activationShape = activations.Sizes();
        _outputGradientShape = outputGradients.Sizes();
        if (_activationShape.Length is not (3 or 4))
            throw new ArgumentException("activations must be m × T × in' (or s × m × T × in')", nameof(activations));
        if (_outputGradientShape.Length != 4) throw new ArgumentException("output gradients must be s × m × T × out", nameof(outputGradients));
        Adapter = adapter;
        _activations = activations;
        _outputGradients = outputGradients;
        _dtype = outputGradients.dtype;
        Weight = weight;
    }

    private LayerStatistics(ILayerAdapter adapter, Tensor tokens, Tensor outputGradients, double weight, bool _)
    {
        _outputGradientShape = outputGradients.Sizes();
        Adapter = adapter;
        Tokens = tokens;
        _outputGradients = outputGradients;
        _dtype = outputGradients.dtype;
        Weight = weight;
    }

    /// <summary>
    /// Statistics of one sample per example kept as rows only (<see cref="KeptRows"/>): Ā as (m·T) × in' and D as
    /// (m·T) × out, for <paramref name="batch"/> = m examples. <see cref="Activations"/> (m × T × in') and
    /// <see cref="OutputGradients"/> (1 × m × T × out) are views of the rows made on each access, so a step whose blocks
    /// read only the rows makes no view.
    /// </summary>
    internal LayerStatistics(ILayerAdapter adapter, Tensor activationRows, Tensor gradientRows, long batch, double weight)
    {
        long rows = gradientRows.size(0);
        _activationShape = new[] { batch, rows / batch, activationRows.size(1) };
        _outputGradientShape = new[] { 1, batch, rows / batch, gradientRows.size(1) };
        Adapter = adapter;
        _dtype = gradientRows.dtype;
        Weight = weight;
        KeptRows = (activationRows, gradientRows);
    }

    /// <summary>
    /// Statistics of an index layer (W̄ of width V = <see cref="ILayerAdapter.InputDim"/>, āᵢₜ = e_{kᵢₜ}) from its
    /// token indices <paramref name="tokens"/> (m × T, int64) and δ (s × m × T × out), without one-hot rows.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes do not match.</exception>
    public static LayerStatistics FromTokens(ILayerAdapter adapter, Tensor tokens, Tensor outputGradients, double weight)
    {
        if (tokens.dim() != 2) throw new ArgumentException("tokens must be m × T", nameof(tokens));
        if (outputGradients.dim() != 4 || outputGradients.size(1) != tokens.size(0) || outputGradients.size(2) != tokens.size(1))
            throw new ArgumentException(
                $"output gradients [{string.Join(", ", outputGradients.Sizes())}] must be s × m × T × out for tokens [{string.Join(", ", tokens.Sizes())}]",
                nameof(outputGradients));
        return new LayerStatistics(adapter, tokens, outputGradients, weight, true);
    }

    public ILayerAdapter Adapter { get; }

    /// <summary>
    /// ā: m × T × in' for Kronecker layers (s × m × T × in' when <see cref="SampleDependentActivations"/>); x̂
    /// (m × T × features) for elementwise layers. For index layers built by <see cref="FromTokens"/>, the one-hot rows
    /// (m × T × V), formed on every access: methods that can use <see cref="Tokens"/> do.
    /// </summary>
    public Tensor Activations => _activations
        ?? (Tokens is null ? KeptRows!.Value.Activations.reshape(_activationShape!) : nn.functional.one_hot(Tokens, Adapter.InputDim).to_type(_dtype));

    /// <summary>True when the activations carry a gradient-sample dimension (s × m × T × in').</summary>
    public bool SampleDependentActivations => _activationShape is { Length: 4 };

    /// <summary>Token indices (m × T, int64) when the layer is an index layer (Embedding); null otherwise.</summary>
    public Tensor? Tokens { get; init; }

    /// <summary>
    /// For a tensor tied in transposed layouts (<see cref="TiedLayerAdapter"/> with a transposed use): per position (length
    /// T), true where the position belongs to a transposed (Embedding) use, whose δ is the one-hot row e_k and whose ā is
    /// the Embedding's output gradient; null otherwise. K-FAC forms one Kronecker term per kind of use from it.
    /// </summary>
    public IReadOnlyList<bool>? TransposedPositions { get; init; }

    /// <summary>δ: s × m × T × out (for statistics kept as rows only, a view of the rows made on each access).</summary>
    public Tensor OutputGradients => _outputGradients ?? KeptRows!.Value.OutputGradients.reshape(_outputGradientShape);

    /// <summary>True when the statistics' tensors were disposed (the dispose scope of the step that made them has ended).</summary>
    internal bool IsDisposed => (_outputGradients ?? KeptRows!.Value.OutputGradients).IsInvalid;
    public double Weight { get; }

    /// <summary>
    /// c such that the training loss's gradient with respect to W̄ is c · Σᵢ gᵢ = Jᵀ(c·1), when the statistics come from
    /// that loss's own backward pass (the empirical Fisher of <see cref="FisherEstimator.CollectFromLossGradients(IReadOnlyList{Capture.CapturedLayer}, long)"/>:
    /// c = 1/m); null when the gradient is not a known combination of the rows (Monte-Carlo or exact Fisher, a metric
    /// from another batch). Lets TENGraD solve by the push-through identity without a subtraction.
    /// </summary>
    public double? GradientWeight { get; init; }

    /// <summary>The same statistics (same tensors) with <see cref="GradientWeight"/> = <paramref name="c"/>.</summary>
    public LayerStatistics WithGradientWeight(double? c) => _activations is { } a
        ? new LayerStatistics(Adapter, a, _outputGradients!, Weight)
            { Tokens = Tokens, TransposedPositions = TransposedPositions, GradientWeight = c, KeptRows = KeptRows }
        : Tokens is null
            ? new LayerStatistics(Adapter, KeptRows!.Value.Activations, KeptRows.Value.OutputGradients, BatchSize, Weight)
                { TransposedPositions = TransposedPositions, GradientWeight = c }
            : new LayerStatistics(Adapter, Tokens, _outputGradients!, Weight, true) { GradientWeight = c };

    /// <summary>
    /// The 2-D tensors that <see cref="Activations"/> and <see cref="OutputGradients"/> are views of, when the statistics
    /// were built from them (<see cref="Capture.LinearAdapter"/>: Ā as (m·T) × in', D as (m·T) × out, one sample): the
    /// row accessors return them instead of a new view. Null otherwise.
    /// </summary>
    internal (Tensor Activations, Tensor OutputGradients)? KeptRows { get; init; }

    /// <summary>Ā as rows, (m·T) × in' ((s·m·T) × in' for activations per sample): the kept rows or a view.</summary>
    internal Tensor ActivationRows() => KeptRows is { } kept ? kept.Activations : Activations.reshape(-1, InputWidth);

    /// <summary>D as rows, (s·m·T) × out, in the order of <see cref="FlatOutputGradients"/>: the kept rows or a view.</summary>
    internal Tensor OutputGradientRows() => KeptRows is { } kept ? kept.OutputGradients : OutputGradients.reshape(-1, OutputWidth);

    /// <summary>ā as rows paired with <see cref="OutputGradientRows"/>, (n·T) × in' (<see cref="PairedActivations"/> as rows).</summary>
    internal Tensor PairedActivationRows() => Samples == 1 || SampleDependentActivations
        ? ActivationRows()
        : PairedActivations().reshape(-1, InputWidth);

    /// <summary>The statistics' floating-point type.</summary>
    public ScalarType Dtype => _dtype;

    public long BatchSize => _outputGradientShape[1];
    public long Positions => _outputGradientShape[2];
    public long Samples => _outputGradientShape[0];

    /// <summary>Width of δ: out.</summary>
    public long OutputWidth => _outputGradientShape[3];

    /// <summary>Width of ā: in' (V for index layers).</summary>
    public long InputWidth => _activationShape is { } a ? a[^1] : Adapter.InputDim;

    /// <summary>The shape of ā as given (m × T × in' or s × m × T × in'); null for index layers.</summary>
    internal IReadOnlyList<long>? ActivationShape => _activationShape;

    /// <summary>Number of gradient samples n = s · m.</summary>
    public long SampleCount => Samples * BatchSize;

    /// <summary>ā repeated for every gradient sample: n × T × in', aligned with <see cref="FlatOutputGradients"/>.</summary>
    public Tensor PairedActivations()
    {
        var a = Activations;
        if (SampleDependentActivations) return a.reshape(SampleCount, Positions, -1);
        return Samples == 1 ? a : a.unsqueeze(0).expand(Samples, -1, -1, -1).reshape(SampleCount, Positions, -1);
    }

    /// <summary>The token indices repeated for every gradient sample: n × T, aligned with <see cref="FlatOutputGradients"/>; null for other layers.</summary>
    public Tensor? PairedTokens() =>
        Tokens is null ? null : Samples == 1 ? Tokens : Tokens.unsqueeze(0).expand(Samples, -1, -1).reshape(SampleCount, Positions);

    /// <summary>δ as n × T × out.</summary>
    public Tensor FlatOutputGradients() => OutputGradients.reshape(SampleCount, Positions, -1);

    /// <summary>
    /// Per-sample gradients of W̄: n × out × in' (Σₜ δₜ āₜᵀ, by one batched matmul, no per-example loop; for index
    /// layers by a scatter-add of δ into the token columns).
    /// </summary>
    public Tensor PerSampleGradients() => Tokens is not null
        ? TokenGradients.PerSample(PairedTokens()!, FlatOutputGradients(), Adapter.InputDim)
        : Adapter.PerSampleGradients(PairedActivations(), FlatOutputGradients());

    /// <summary>Σ over the n samples of the per-sample gradients (W̄-shaped), without forming them for Kronecker and index layers.</summary>
    public Tensor GradientSum()
    {
        // Kronecker layers: Dᵀ Ā over the n·T rows (the kept rows where there are, not views of n × T × width tensors).
        if (Tokens is null && Adapter.IsKronecker) return OutputGradientRows().t().mm(PairedActivationRows());
        var d = FlatOutputGradients();
        if (Tokens is not null)
            return TokenGradients.TransposeMultiply(PairedTokens()!, d, ones(SampleCount, dtype: d.dtype, device: d.device), Adapter.InputDim);
        if (!Adapter.IsKronecker) return PerSampleGradients().sum(new long[] { 0 });
        var a = PairedActivations();
        return d.reshape(-1, d.size(2)).t().mm(a.reshape(-1, a.size(2)));
    }

    /// <summary>
    /// True when the per-sample gradients are δ āᵀ with one position (T = 1) and ā is W̄'s column space given as a
    /// dense tensor: rank-one shortcuts apply (index layers take their index paths instead).
    /// </summary>
    public bool IsRankOne => Positions == 1 && Adapter.IsKronecker && Tokens is null;
}

/// <summary>Per-example gradients from captured activations and output gradients.</summary>
public static class PerSampleGradient
{
    /// <summary>gᵢ = Σₜ δᵢₜ āᵢₜᵀ: from ā (n × T × in') and δ (n × T × out) to n × out × in'.</summary>
    public static Tensor Compute(Tensor activations, Tensor outputGradients) =>
        outputGradients.transpose(1, 2).bmm(activations);
}
