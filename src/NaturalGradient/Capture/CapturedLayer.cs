using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// One covered layer and what its forward hook recorded since the last <see cref="LayerCapture.Clear"/>: one entry per
/// call. A layer called several times in one forward (weight tying, Siamese branches, a block applied twice) has several
/// calls; their positions are concatenated, so the per-example gradient is the sum over calls (docs/LAYERS.md).
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
    /// position dimension: m × (Σ T_c) × width.
    /// </summary>
    public Tensor Activations()
    {
        var used = _calls.Where(c => c.Connected).ToList();
        if (used.Count == 0) used = _calls.Take(1).ToList();
        var parts = used.Select(c => Adapter.Activations(c.Input)).ToArray();
        CheckBatch(parts);
        return parts.Length == 1 ? parts[0] : cat(parts, 1);
    }

    /// <summary>Token indices over the connected calls (m × Σ T_c), for index layers.</summary>
    public Tensor? Tokens()
    {
        if (Adapter is not ITokenLayerAdapter tokens) return null;
        var used = _calls.Where(c => c.Connected).ToList();
        if (used.Count == 0) used = _calls.Take(1).ToList();
        var parts = used.Select(c => tokens.Tokens(c.Input)).ToArray();
        return parts.Length == 1 ? parts[0] : cat(parts, 1);
    }

    internal void CheckBatch(Tensor[] parts)
    {
        if (parts.Select(p => p.shape[0]).Distinct().Count() > 1)
            throw new NotSupportedException(
                $"layer '{Name}' ({Adapter.KindName}) was called {parts.Length} times in one forward pass with different batch sizes " +
                $"({string.Join(", ", parts.Select(p => p.shape[0]))}); a shared layer must see the same m examples in every call");
    }

    internal void Record(Tensor input, Tensor output)
    {
        // nn.Sequential disposes intermediate outputs after use: keep second handles to the same storage.
        _calls.Add(new LayerCall(input.detach(), output.alias()));
    }

    /// <remarks>The recorded tensors belong to the dispose scope that was current during the forward pass.</remarks>
    internal void Clear() => _calls.Clear();
}

/// <summary>One forward call of a covered layer: its input (detached) and output (in the graph).</summary>
public sealed class LayerCall
{
    internal LayerCall(Tensor input, Tensor output)
    {
        Input = input;
        Output = output;
    }

    public Tensor Input { get; }
    public Tensor Output { get; }

    /// <summary>
    /// False once a metric backward found this output outside the scalar's graph — e.g. a validation forward pass run
    /// with gradients on, which is not a second use of the layer in the training loss and is ignored.
    /// </summary>
    public bool Connected { get; internal set; } = true;
}
