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
/// Empirical Fisher: s = 1, w = 1/m (seed 000 eq 37). Monte-Carlo Fisher: s = k sampled targets, w = 1/(m k).
/// Exact Fisher (GGN): s = columns of the output-Fisher factor B, w = 1/m (seed 001 §7).
/// </remarks>
public sealed class LayerStatistics
{
    public LayerStatistics(ILayerAdapter adapter, Tensor activations, Tensor outputGradients, double weight)
    {
        if (activations.dim() != 3) throw new ArgumentException("activations must be m × T × in'", nameof(activations));
        if (outputGradients.dim() != 4) throw new ArgumentException("output gradients must be s × m × T × out", nameof(outputGradients));
        Adapter = adapter;
        Activations = activations;
        OutputGradients = outputGradients;
        Weight = weight;
    }

    public ILayerAdapter Adapter { get; }

    /// <summary>ā: m × T × in' for Kronecker layers (one-hot rows for Embedding); x̂ (m × T × features) for elementwise layers.</summary>
    public Tensor Activations { get; }

    /// <summary>Token indices (m × T, int64) when the layer is an index layer (Embedding); null otherwise.</summary>
    public Tensor? Tokens { get; init; }

    public Tensor OutputGradients { get; }
    public double Weight { get; }

    /// <summary>
    /// c such that the training loss's gradient with respect to W̄ is c · Σᵢ gᵢ = Jᵀ(c·1), when the statistics come from
    /// that loss's own backward pass (the empirical Fisher of <see cref="FisherEstimator.CollectFromLossGradients"/>:
    /// c = 1/m); null when the gradient is not a known combination of the rows (Monte-Carlo or exact Fisher, a metric
    /// from another batch). Lets TENGraD solve by the push-through identity without a subtraction.
    /// </summary>
    public double? GradientWeight { get; init; }

    public long BatchSize => Activations.shape[0];
    public long Positions => Activations.shape[1];
    public long Samples => OutputGradients.shape[0];

    /// <summary>Number of gradient samples n = s · m.</summary>
    public long SampleCount => Samples * BatchSize;

    /// <summary>ā repeated for every gradient sample: n × T × in', aligned with <see cref="FlatOutputGradients"/>.</summary>
    public Tensor PairedActivations() =>
        Samples == 1 ? Activations : Activations.unsqueeze(0).expand(Samples, -1, -1, -1).reshape(SampleCount, Positions, -1);

    /// <summary>δ as n × T × out.</summary>
    public Tensor FlatOutputGradients() => OutputGradients.reshape(SampleCount, Positions, -1);

    /// <summary>Per-sample gradients of W̄: n × out × in' (Σₜ δₜ āₜᵀ, by one batched matmul, no per-example loop).</summary>
    public Tensor PerSampleGradients() => Adapter.PerSampleGradients(PairedActivations(), FlatOutputGradients());

    /// <summary>True when the per-sample gradients are δ āᵀ with one position (T = 1) and ā is W̄'s column space: rank-one shortcuts apply.</summary>
    public bool IsRankOne => Positions == 1 && Adapter.IsKronecker;
}

/// <summary>Per-example gradients from captured activations and output gradients.</summary>
public static class PerSampleGradient
{
    /// <summary>gᵢ = Σₜ δᵢₜ āᵢₜᵀ: from ā (n × T × in') and δ (n × T × out) to n × out × in'.</summary>
    public static Tensor Compute(Tensor activations, Tensor outputGradients) =>
        outputGradients.transpose(1, 2).bmm(activations);
}
