using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;

namespace NaturalGradient.Training;

/// <summary>
/// Which rank computes each Kronecker layer's inverse work (eigendecompositions or damped Cholesky inverses) in
/// distributed K-FAC/EKFAC, balanced by cost: a layer with W̄ of shape out × in' costs in'³ + out³ (both the
/// Cholesky inverse, ≈ d³ flops, and the symmetric eigendecomposition, ≈ 4.7d³ by divide and conquer, grow as d³ per
/// d × d factor).
/// </summary>
/// <remarks>
/// Greedy longest-processing-time assignment (Graham 1969): layers in decreasing cost (ties: model order) each go to
/// the rank with the least assigned cost so far (ties: the lowest rank). The result depends only on the layer shapes
/// and N, so every rank computes the same assignment without communicating, and the most loaded rank carries at most
/// 4/3 of the optimum. With more ranks than layers some ranks own none (KAISA's layer-wise distribution has the same
/// limit; a single layer's factors are not split).
/// </remarks>
public sealed class KroneckerWorkAssignment
{
    private readonly Dictionary<string, int> _owner;

    /// <param name="layers">The Kronecker layers, in model order.</param>
    /// <param name="ranks">N ≥ 1.</param>
    public KroneckerWorkAssignment(IReadOnlyList<ILayerAdapter> layers, int ranks)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (ranks < 1) throw new ArgumentOutOfRangeException(nameof(ranks), ranks, "the job needs at least one rank");
        Ranks = ranks;
        _owner = new Dictionary<string, int>(StringComparer.Ordinal);
        Load = new double[ranks];
        foreach (var (layer, _) in layers.Select((l, i) => (l, i)).OrderByDescending(p => Cost(p.l)).ThenBy(p => p.i))
        {
            int rank = 0;
            for (int r = 1; r < ranks; r++) if (Load[r] < Load[rank]) rank = r;
            _owner[layer.Name] = rank;
            Load[rank] += Cost(layer);
        }
    }

    /// <summary>N.</summary>
    public int Ranks { get; }

    /// <summary>Σ cost of the layers each rank owns (<see cref="Cost"/> per layer).</summary>
    public double[] Load { get; }

    /// <summary>
    /// The cost model: in'³ + out³ for a layer with W̄ of shape out × in'; in' + out³ for an index layer, whose A is a
    /// diagonal inverted entry by entry (<see cref="DiagonalActivation"/>).
    /// </summary>
    public static double Cost(ILayerAdapter layer) =>
        (DiagonalActivation.Applies(layer) ? layer.InputDim : Math.Pow(layer.InputDim, 3)) + Math.Pow(layer.OutputDim, 3);

    /// <summary>The rank that computes <paramref name="layerName"/>'s inverse work.</summary>
    public int Owner(string layerName) =>
        _owner.TryGetValue(layerName, out var rank) ? rank : throw new KeyNotFoundException($"layer '{layerName}' is not in the assignment");

    /// <summary>True when <paramref name="layerName"/> is in the assignment.</summary>
    public bool Covers(string layerName) => _owner.ContainsKey(layerName);
}
