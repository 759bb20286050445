using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// One covered layer and what its forward hook recorded since the last <see cref="LayerCapture.Clear"/>: one entry per
/// call. A layer called several times in one forward (Siamese branches, a block applied twice) has several calls; their
/// positions are concatenated, so the per-example gradient is the sum over calls (docs/LAYERS.md). A tensor tied across
/// different modules is one layer (<see cref="TiedLayerAdapter"/>) whose calls come from every module using it.
/// </summary>
public sealed class CapturedLayer
{
    private readonly List<LayerCall> _calls = new();

    internal CapturedLayer(ILayerAdapter adapter) => Adapter = adapter;

    public ILayerAdapter Adapter { get; }
    public string Name => Adapter.Name;

    /// <summary>The recorded calls, in order.</summary>
    public IReadOnlyList<LayerCall> Calls => _calls;

    /// <summary>The layer input of the first recorded call, detached.</summary>
    public Tensor? Input => _calls.Count > 0 ? _calls[0].Input : null;

    /// <summary>The layer output of the first recorded call (an alias kept in the autograd graph).</summary>
    public Tensor? Output => _calls.Count > 0 ? _calls[0].Output : null;

    /// <summary>How many times the layer ran (with gradients on) since the last <see cref="LayerCapture.Clear"/>.</summary>
    public int CallCount => _calls.Count;

    public bool IsRecorded => _calls.Count > 0;

    /// <summary>
    /// ā over the calls that reach the metric's scalar (see <see cref="LayerCall.Connected"/>), concatenated along the
    /// position dimension: m × (Σ T_c) × width. Not defined for tied layers (their activations depend on the use).
    /// </summary>
    public Tensor Activations()
    {
        var parts = UsedCalls().Select(c => Adapter.Activations(_calls[c].Input)).ToArray();
        CheckBatch(parts);
        return parts.Length == 1 ? parts[0] : cat(parts, 1);
    }

    /// <summary>Token indices over the connected calls (m × Σ T_c), for index layers.</summary>
    public Tensor? Tokens()
    {
        if (Adapter is not ITokenLayerAdapter tokens) return null;
        var parts = UsedCalls().Select(c => tokens.Tokens(_calls[c].Input)).ToArray();
        return parts.Length == 1 ? parts[0] : cat(parts, 1);
    }

    /// <summary>Indices of the connected calls; the first call when none is (its statistics are then zero).</summary>
    private List<int> UsedCalls()
    {
        var used = Enumerable.Range(0, _calls.Count).Where(c => _calls[c].Connected).ToList();
        return used.Count > 0 ? used : new List<int> { 0 };
    }

    /// <summary>
    /// The layer's statistics from the gradients a scalar (or several, one per gradient sample) left at its recorded
    /// outputs: <paramref name="passes"/>[s][c] is the gradient at call c's output in pass s (null: the call is outside
    /// that scalar's graph). Calls outside every pass's graph are marked not connected and left out.
    /// </summary>
    /// <param name="passes">One array per gradient sample, one entry per recorded call (detached, the output's shape).</param>
    /// <param name="weight">w of M = w Σ g gᵀ.</param>
    internal LayerStatistics Statistics(IReadOnlyList<Tensor?[]> passes, double weight)
    {
        for (int c = 0; c < _calls.Count; c++) _calls[c].Connected = passes.Any(p => p[c] is not null);
        var used = UsedCalls();
        CheckBatch(used.Select(c => _calls[c].Output).ToArray());
        if (Adapter is TiedLayerAdapter tied) return tied.Statistics(_calls, passes, used, weight);
        Tensor Delta(Tensor?[] pass, int c) => Adapter.OutputGradients(pass[c] ?? zeros_like(_calls[c].Output).detach());
        if (passes.Count == 1 && used.Count == 1 && Adapter is LinearAdapter linear)
        {
            // One sample of one call of a Linear layer: Ā and D built as rows, kept beside their views.
            int call = used[0];
            return linear.CallStatistics(_calls[call].Input, passes[0][call] ?? zeros_like(_calls[call].Output).detach(), weight);
        }
        var perPass = passes.Select(p =>
        {
            var parts = used.Select(c => Delta(p, c)).ToArray();
            return parts.Length == 1 ? parts[0] : cat(parts, 1);
        }).ToArray();
        var gradients = perPass.Length == 1 ? perPass[0].unsqueeze(0) : stack(perPass);   // one pass: a view, no copy
        return Tokens() is { } tokens
            ? LayerStatistics.FromTokens(Adapter, tokens, gradients, weight)
            : new LayerStatistics(Adapter, Activations(), gradients, weight);
    }

    internal void CheckBatch(Tensor[] parts)
    {
        if (parts.Length > 1 && parts.Select(p => p.size(0)).Distinct().Count() > 1)
            throw new NotSupportedException(
                $"layer '{Name}' ({Adapter.KindName}) was called {parts.Length} times in one forward pass with different batch sizes " +
                $"({string.Join(", ", parts.Select(p => p.size(0)))}); a shared layer must see the same m examples in every call");
    }

    /// <param name="input">The call's input.</param>
    /// <param name="output">The call's output.</param>
    /// <param name="use">For a tied layer, the index of the module that made the call (in <see cref="TiedLayerAdapter.Uses"/>).</param>
    internal void Record(Tensor input, Tensor output, int use = 0)
    {
        // nn.Sequential disposes intermediate outputs after use: keep second handles to the same storage.
        _calls.Add(new LayerCall(input.detach(), output.alias(), use));
    }

    /// <remarks>The recorded tensors belong to the dispose scope that was current during the forward pass.</remarks>
    internal void Clear() => _calls.Clear();
}

/// <summary>One forward call of a covered layer: its input (detached) and output (in the graph).</summary>
public sealed class LayerCall
{
    internal LayerCall(Tensor input, Tensor output, int use)
    {
        Input = input;
        Output = output;
        Use = use;
    }

    /// <summary>For a tied layer, which of its modules made the call (index into <see cref="TiedLayerAdapter.Uses"/>); 0 otherwise.</summary>
    public int Use { get; }

    public Tensor Input { get; }
    public Tensor Output { get; }

    /// <summary>
    /// False once a metric backward found this output outside the scalar's graph — e.g. a validation forward pass run
    /// with gradients on, which is not a second use of the layer in the training loss and is ignored.
    /// </summary>
    public bool Connected { get; internal set; } = true;
}
