using NaturalGradient.Fisher;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>
/// Parameter tensors used by several different layers (weight tying: an Embedding whose table is also the output
/// Linear's weight; two Linear modules sharing one weight) covered as ONE layer: one W̄ over the distinct tensors of its
/// uses, whose per-example gradient is the sum of every use's contribution — the gradient autograd accumulates in .grad.
/// </summary>
/// <remarks>
/// <para><b>Layout.</b> When some use is a Linear or Conv2d ("direct" use, W̄ᵤ = [W.reshape(R, −1) b]), W̄ has R rows and
/// one column block per distinct tensor: W̄ = [T₁.reshape(R, −1) … Tₖ.reshape(R, −1)] (a bias is a block of one column).
/// A direct use's āᵤₜ is scattered into its tensors' column blocks (zeros elsewhere) and δᵤₜ is kept. An Embedding use
/// (W̄ᵤ = Eᵀ, the transpose of the shared table E, V × d) contributes δᵤₜ e_kᵀ to W̄ᵤ, i.e. e_k δᵤₜᵀ to E: in W̄ its
/// "output gradient" is the one-hot row e_k (width R = V) and its "activation" is δᵤₜ in E's columns (a transposed use).
/// Every use's positions are concatenated, so gᵢ = Σᵤ Σₜ δ̃ᵢᵤₜ ãᵢᵤₜᵀ is exactly ∇_W̄ ℓᵢ, and the exact, block, TENGraD and
/// diagonal structures are exact. A transposed use's activations depend on the gradient sample (s × m × T × in').</para>
/// <para>When every use is an Embedding of the same table, W̄ = Eᵀ as for one Embedding and the indices of every use are
/// concatenated as positions (an index layer).</para>
/// <para><b>K-FAC.</b> Without a transposed use the uses are positions of one Kronecker layer (expand/reduce, as for a
/// module called several times). With one, the activations of the transposed positions are output gradients: the
/// statistics mark those positions (<see cref="LayerStatistics.TransposedPositions"/>) and K-FAC gives the layer the sum
/// of the two kinds of uses' Kronecker terms, G₁ ⊗ A₁ + G₂ ⊗ A₂, solved exactly
/// (<see cref="Curvature.Kfac.KroneckerSumBlock"/>); EKFAC and K-BFGS refuse the model by name
/// (<see cref="KroneckerFactored"/>).</para>
/// </remarks>
public sealed class TiedLayerAdapter : ILayerAdapter
{
    private readonly TiedUse[] _uses;
    private readonly Parameter[] _tensors;
    private readonly long[] _offsets, _columns;

    private TiedLayerAdapter(IReadOnlyList<ILayerAdapter> uses, IReadOnlyList<string> tiedTensors, bool indexLayer)
    {
        Name = string.Join("+", uses.Select(u => u.Name));
        KindName = "tied " + string.Join("+", uses.Select(u => u.KindName));
        Module = uses[0].Module;
        TiedTensors = tiedTensors;
        IsIndexLayer = indexLayer;
        var keys = new List<string>();
        var tensors = new List<Parameter>();
        foreach (var u in uses)
            foreach (var p in u.Parameters)
            {
                var key = TensorIdentity.Key(p);
                if (keys.Contains(key)) continue;
                keys.Add(key);
                tensors.Add(p);
            }
        _tensors = tensors.ToArray();
        Parameters = _tensors;
        if (indexLayer)
        {
            OutputDim = uses[0].OutputDim;
            InputDim = uses[0].InputDim;
            _offsets = _columns = Array.Empty<long>();
            _uses = uses.Select(u => new TiedUse(u, false, null)).ToArray();
            return;
        }
        OutputDim = uses.First(u => u is not EmbeddingAdapter).OutputDim;
        _columns = _tensors.Select(t => t.numel() / OutputDim).ToArray();
        _offsets = new long[_tensors.Length];
        for (int i = 1; i < _offsets.Length; i++) _offsets[i] = _offsets[i - 1] + _columns[i - 1];
        InputDim = _columns.Sum();
        _uses = uses.Select(u =>
        {
            bool transposed = u is EmbeddingAdapter;
            var cols = u.Parameters.SelectMany(p =>
            {
                int k = keys.IndexOf(TensorIdentity.Key(p));
                return Enumerable.Range(0, (int)_columns[k]).Select(c => _offsets[k] + c);
            }).ToArray();
            return new TiedUse(u, transposed, tensor(cols, dtype: ScalarType.Int64).DetachFromDisposeScope());
        }).ToArray();
    }

    /// <summary>
    /// The covered layer for <paramref name="uses"/> (adapters sharing at least one trainable tensor), or null with the
    /// reason when they cannot be covered together.
    /// </summary>
    /// <param name="uses">The layers, in model order.</param>
    /// <param name="tiedTensors">Display names of the tensors used by more than one of them (for messages).</param>
    /// <param name="reason">Why the uses keep their plain gradient, when null is returned.</param>
    public static TiedLayerAdapter? TryCreate(IReadOnlyList<ILayerAdapter> uses, IReadOnlyList<string> tiedTensors, out string reason)
    {
        reason = "";
        var odd = uses.FirstOrDefault(u => u is not (LinearAdapter or Conv2dAdapter or EmbeddingAdapter));
        if (odd is not null)
        {
            reason = $"layer '{odd.Name}' ({odd.KindName}) has no tied-weight layout (supported: Linear, Conv2d, Embedding)";
            return null;
        }
        if (uses.All(u => u is EmbeddingAdapter)) return new TiedLayerAdapter(uses, tiedTensors, indexLayer: true);
        var direct = uses.Where(u => u is not EmbeddingAdapter).ToList();
        long rows = direct[0].OutputDim;
        var mismatch = uses.FirstOrDefault(u => u is EmbeddingAdapter e ? e.Vocabulary != rows : u.OutputDim != rows);
        if (mismatch is not null)
        {
            reason = $"layers '{direct[0].Name}' and '{mismatch.Name}' use the tied tensor with different row counts";
            return null;
        }
        return new TiedLayerAdapter(uses, tiedTensors, indexLayer: false);
    }

    public string Name { get; }
    public string KindName { get; }
    public Module Module { get; }

    /// <summary>The layers that use the tied tensors, in model order.</summary>
    public IReadOnlyList<ILayerAdapter> Uses => _uses.Select(u => u.Adapter).ToList();

    /// <summary>Display names of the tensors used by more than one layer.</summary>
    public IReadOnlyList<string> TiedTensors { get; }

    /// <summary>True when every use is an Embedding of the same table: W̄ = Eᵀ and the statistics carry token indices.</summary>
    public bool IsIndexLayer { get; }

    /// <summary>
    /// True when one Kronecker factorisation applies (no use is transposed relative to W̄): K-FAC and EKFAC treat the uses'
    /// positions like those of a module called several times. False for an Embedding tied to a Linear or Conv2d: K-FAC
    /// then sums one Kronecker term per kind of use (<see cref="Curvature.Kfac.KroneckerSumBlock"/>), EKFAC and K-BFGS refuse.
    /// </summary>
    public bool KroneckerFactored => IsIndexLayer || _uses.All(u => !u.Transposed);

    public bool HasBias => _tensors.Any(t => t.dim() == 1);
    public bool HasWeight => true;
    public long InputDim { get; }
    public long OutputDim { get; }
    public bool IsKronecker => true;
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Not defined for a tied layer alone: its activations depend on the use (see <see cref="CapturedLayer"/>).</summary>
    public Tensor Activations(Tensor input) =>
        throw new NotSupportedException($"layer '{Name}' ({KindName}): the activations of a tied layer depend on the use; collect statistics with FisherEstimator");

    /// <summary>Not defined for a tied layer alone: its output gradients depend on the use.</summary>
    public Tensor OutputGradients(Tensor gradOutput) =>
        throw new NotSupportedException($"layer '{Name}' ({KindName}): the output gradients of a tied layer depend on the use; collect statistics with FisherEstimator");

    public Tensor PerSampleGradients(Tensor activations, Tensor outputGradients) =>
        outputGradients.transpose(1, 2).bmm(activations);

    public IReadOnlyList<Tensor> SplitMatrix(Tensor matrix)
    {
        if (IsIndexLayer) return _uses[0].Adapter.SplitMatrix(matrix);
        return _tensors.Select((t, k) => matrix.narrow(1, _offsets[k], _columns[k]).reshape(t.Sizes())).ToList();
    }

    public Tensor JoinMatrix(IReadOnlyList<Tensor> perParameter)
    {
        if (IsIndexLayer) return _uses[0].Adapter.JoinMatrix(perParameter);
        var blocks = perParameter.Select((t, k) => t.reshape(OutputDim, _columns[k])).ToArray();
        return blocks.Length == 1 ? blocks[0].clone() : cat(blocks, 1);
    }

    public Tensor GradientMatrix() => ParameterMatrix.Gradient(this);
    public void WriteGradientMatrix(Tensor g) => ParameterMatrix.WriteGradient(this, g);
    public Tensor WeightMatrix() => ParameterMatrix.Weights(this);
    public void AddToWeights(Tensor update, double alpha = 1) => ParameterMatrix.AddToWeights(this, update, alpha);

    /// <summary>
    /// The statistics of W̄ from the recorded calls of every use (<see cref="LayerCall.Use"/> indexes <see cref="Uses"/>)
    /// and their output gradients, one array per gradient sample (null entries: zeros).
    /// </summary>
    internal LayerStatistics Statistics(IReadOnlyList<LayerCall> calls, IReadOnlyList<Tensor?[]> passes, IReadOnlyList<int> used, double weight)
    {
        Tensor Delta(Tensor?[] pass, int c) =>
            _uses[calls[c].Use].Adapter.OutputGradients(pass[c] ?? zeros_like(calls[c].Output).detach());

        if (IsIndexLayer)
        {
            var tokens = cat(used.Select(c => ((EmbeddingAdapter)_uses[calls[c].Use].Adapter).Tokens(calls[c].Input)).ToArray(), 1);
            var d = stack(passes.Select(p => cat(used.Select(c => Delta(p, c)).ToArray(), 1)).ToArray());
            return LayerStatistics.FromTokens(this, tokens, d, weight);
        }

        // Activations of direct uses do not depend on the pass: place them once.
        var placed = new Dictionary<int, Tensor>();
        foreach (int c in used)
        {
            var use = _uses[calls[c].Use];
            if (!use.Transposed) placed[c] = Place(use.Adapter.Activations(calls[c].Input), use.Columns!);
        }
        var activations = new List<Tensor>(passes.Count);
        var gradients = new List<Tensor>(passes.Count);
        var transposed = new List<bool>();
        foreach (var pass in passes)
        {
            var a = new List<Tensor>(used.Count);
            var d = new List<Tensor>(used.Count);
            foreach (int c in used)
            {
                var use = _uses[calls[c].Use];
                var delta = Delta(pass, c);
                if (use.Transposed)
                {
                    var tokens = ((EmbeddingAdapter)use.Adapter).Tokens(calls[c].Input);
                    if (activations.Count == 0) transposed.AddRange(Enumerable.Repeat(true, (int)tokens.size(1)));
                    a.Add(Place(delta, use.Columns!));
                    d.Add(nn.functional.one_hot(tokens, OutputDim).to_type(delta.dtype));
                }
                else
                {
                    if (activations.Count == 0) transposed.AddRange(Enumerable.Repeat(false, (int)delta.size(1)));
                    a.Add(placed[c]);
                    d.Add(delta);
                }
            }
            activations.Add(a.Count == 1 ? a[0] : cat(a.ToArray(), 1));
            gradients.Add(d.Count == 1 ? d[0] : cat(d.ToArray(), 1));
        }
        if (KroneckerFactored) return new LayerStatistics(this, activations[0], stack(gradients.ToArray()), weight);
        return new LayerStatistics(this, stack(activations.ToArray()), stack(gradients.ToArray()), weight) { TransposedPositions = transposed };
    }

    /// <summary>x (m × T × w) written into W̄'s columns <paramref name="columns"/> (length w) of an m × T × in' zero tensor.</summary>
    private Tensor Place(Tensor x, Tensor columns) =>
        zeros(new[] { x.size(0), x.size(1), InputDim }, dtype: x.dtype, device: x.device).index_copy_(2, columns.to(x.device), x);

    private sealed record TiedUse(ILayerAdapter Adapter, bool Transposed, Tensor? Columns);
}
