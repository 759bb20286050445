using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.HessianFree;

/// <summary>
/// The covered layers' parameters as one flat vector, in autograd's order (layer by layer: weight, then bias),
/// and the conversion to and from the per-layer W̄ = [W b] matrices the rest of the library uses.
/// </summary>
/// <remarks>
/// The two orders differ: W̄'s rows interleave a layer's weights and its bias (row i = [Wᵢ,: bᵢ]), while the
/// flat parameter vector stores all of W, then all of b. Each adapter maps between them
/// (<see cref="ILayerAdapter.SplitMatrix"/>, <see cref="ILayerAdapter.JoinMatrix"/>); only trainable tensors are included.
/// </remarks>
public sealed class ParameterLayout
{
    private readonly ILayerAdapter[] _layers;

    public ParameterLayout(IReadOnlyList<ILayerAdapter> layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (layers.Count == 0) throw new ArgumentException("at least one layer is needed", nameof(layers));
        _layers = layers.ToArray();
        Parameters = _layers.SelectMany(l => l.Parameters).Cast<Tensor>().ToArray();
        Count = _layers.Sum(l => l.ParameterCount);
        long total = Parameters.Sum(p => p.numel());
        if (total != Count)
            throw new NotSupportedException($"the covered layers' W̄ matrices hold {Count} entries but their parameters {total}; an adapter's W̄ does not match its parameters");
    }

    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<ILayerAdapter> Layers => _layers;

    /// <summary>θ: every covered parameter, layer by layer, weight then bias.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>Total number of covered parameters p.</summary>
    public long Count { get; }

    /// <summary>True when <paramref name="layers"/> are the same adapters in the same order.</summary>
    public bool Matches(IReadOnlyList<ILayerAdapter> layers) =>
        layers.Count == _layers.Length && layers.Select((l, i) => ReferenceEquals(l, _layers[i])).All(x => x);

    /// <summary>Per-layer W̄-shaped matrices (out × in') → the flat parameter-order vector (length p, dtype of θ).</summary>
    public Tensor ToFlat(IReadOnlyList<Tensor> matrices)
    {
        if (matrices.Count != _layers.Length)
            throw new ArgumentException($"expected {_layers.Length} W̄ matrices, got {matrices.Count}", nameof(matrices));
        var parts = new List<Tensor>(Parameters.Count);
        for (int i = 0; i < _layers.Length; i++)
        {
            var l = _layers[i];
            var m = matrices[i];
            if (m.dim() != 2 || m.size(0) != l.OutputDim || m.size(1) != l.InputDim)
                throw new ArgumentException(
                    $"layer '{l.Name}': expected a {l.OutputDim} × {l.InputDim} W̄ matrix, got [{string.Join(", ", m.Sizes())}]", nameof(matrices));
            parts.AddRange(l.SplitMatrix(m).Select(t => t.flatten()));
        }
        return cat(parts.ToArray()).to_type(Parameters[0].dtype);
    }

    /// <summary>The flat parameter-order vector → per-layer W̄-shaped matrices (out × in'), in <paramref name="dtype"/>.</summary>
    public IReadOnlyList<Tensor> ToMatrices(Tensor flat, ScalarType? dtype = null)
    {
        var pieces = Split(flat);
        var result = new List<Tensor>(_layers.Length);
        int k = 0;
        foreach (var l in _layers)
        {
            var own = pieces.Skip(k).Take(l.Parameters.Count).ToList();
            k += l.Parameters.Count;
            var w = l.JoinMatrix(own);
            result.Add(dtype is null ? w.contiguous() : w.to_type(dtype.Value).contiguous());
        }
        return result;
    }

    /// <summary>The flat vector → one tensor per parameter, shaped like it (views of <paramref name="flat"/>).</summary>
    public IReadOnlyList<Tensor> Split(Tensor flat)
    {
        CheckFlat(flat);
        var result = new Tensor[Parameters.Count];
        long offset = 0;
        for (int i = 0; i < result.Length; i++)
        {
            long n = Parameters[i].numel();
            result[i] = flat.narrow(0, offset, n).view(Parameters[i].Sizes());
            offset += n;
        }
        return result;
    }

    /// <summary>One tensor per parameter → the flat vector.</summary>
    public Tensor Concatenate(IList<Tensor> perParameter) => cat(perParameter.Select(t => t.flatten()).ToArray());

    private void CheckFlat(Tensor flat)
    {
        if (flat.dim() != 1 || flat.size(0) != Count)
            throw new ArgumentException($"expected a flat vector of length {Count}, got [{string.Join(", ", flat.Sizes())}]", nameof(flat));
    }
}
