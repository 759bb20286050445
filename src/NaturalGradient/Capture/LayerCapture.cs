using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>
/// Records, for every covered layer of an ordinary TorchSharp model, its input and its output during a forward
/// pass (through forward hooks), and gives the gradients of any scalar with respect to those outputs.
/// From these come per-example gradients and every curvature statistic, without a per-example backward loop.
/// </summary>
/// <remarks>
/// Hooks fire only for modules invoked with <c>call(...)</c>. Layers whose hook did not fire although they
/// contributed to a loss are reported by <see cref="ThrowIfBypassed"/>. Set <see cref="Enabled"/> to false
/// (or dispose) and the hooks return at once, so plain training pays nothing.
/// </remarks>
public sealed class LayerCapture : IDisposable
{
    private readonly List<CapturedLayer> _layers = new();
    private readonly List<Action> _removers = new();

    /// <param name="model">The model whose layers to cover.</param>
    /// <param name="registry">Which module types are covered; <see cref="LayerRegistry.Default"/> if null.</param>
    /// <param name="include">Optional filter on the dotted module path; layers it rejects keep their plain gradient.</param>
    public LayerCapture(Module model, LayerRegistry? registry = null, Func<string, bool>? include = null)
    {
        registry ??= LayerRegistry.Default;
        foreach (var (name, module) in model.named_modules())
        {
            if (include is not null && !include(name)) continue;
            if (!registry.TryCreate(name, module, out var adapter)) continue;
            if (adapter!.Parameters.All(p => !p.requires_grad)) continue;
            var layer = new CapturedLayer(adapter);
            _layers.Add(layer);
            _removers.Add(AddHook(module, layer));
        }
    }

    /// <summary>The covered layers in model order.</summary>
    public IReadOnlyList<CapturedLayer> Layers => _layers;

    /// <summary>When false the hooks record nothing. Default true.</summary>
    public bool Enabled { get; set; } = true;

    private Action AddHook(Module module, CapturedLayer layer)
    {
        if (module is not Module<Tensor, Tensor> typed)
            throw new NotSupportedException($"layer '{layer.Name}' ({module.GetType().Name}) is not a single-input module");
        var remover = typed.register_forward_hook((_, input, output) =>
        {
            if (Enabled && is_grad_enabled() && output.requires_grad)
                layer.Record(input, output);
            return null!;
        });
        return remover.remove;
    }

    /// <summary>Forgets what the last forward pass recorded. Call before each new forward.</summary>
    public void Clear()
    {
        foreach (var l in _layers) l.Clear();
    }

    /// <summary>Layers recorded exactly once since the last <see cref="Clear"/>.</summary>
    public IReadOnlyList<CapturedLayer> Recorded()
    {
        foreach (var l in _layers)
            if (l.CallCount > 1)
                throw new NotSupportedException(
                    $"layer '{l.Name}' ({l.Adapter.KindName}) ran {l.CallCount} times in one forward pass; shared (re-used) layers are not supported");
        return _layers.Where(l => l.IsRecorded).ToList();
    }

    /// <summary>
    /// Throws <see cref="LayerNotObservedException"/> if a covered layer whose hook did not fire still contributed
    /// to <paramref name="scalar"/> (its weights receive a gradient): its curvature would silently be missing.
    /// </summary>
    public void ThrowIfBypassed(Tensor scalar)
    {
        var missing = _layers.Where(l => l.CallCount == 0).ToList();
        if (missing.Count == 0) return;
        var weights = missing.Select(l => (Tensor)l.Adapter.Parameters[0]).ToList();
        var grads = autograd.grad(new[] { scalar }, weights, retain_graph: true, allow_unused: true);
        for (int i = 0; i < missing.Count; i++)
        {
            bool used = grads[i] is not null && !grads[i].IsInvalid;
            if (used) throw new LayerNotObservedException(missing[i].Name, missing[i].Adapter.KindName);
        }
    }

    /// <summary>
    /// Gradients of <paramref name="scalar"/> with respect to each recorded layer's output, as m × T × out tensors
    /// in the order of <paramref name="layers"/>. The graph is kept (retain_graph) for further passes.
    /// </summary>
    public IReadOnlyList<Tensor> OutputGradients(Tensor scalar, IReadOnlyList<CapturedLayer> layers, bool retainGraph = true)
    {
        var outputs = layers.Select(l => l.Output!).ToList();
        var grads = autograd.grad(new[] { scalar }, outputs, retain_graph: retainGraph, allow_unused: true);
        var result = new List<Tensor>(layers.Count);
        for (int i = 0; i < layers.Count; i++)
        {
            var g = grads[i] is null || grads[i].IsInvalid ? zeros_like(outputs[i]) : grads[i];
            result.Add(layers[i].Adapter.OutputGradients(g.detach()));
        }
        return result;
    }

    public void Dispose()
    {
        foreach (var r in _removers) r();
        _removers.Clear();
        Clear();
    }
}
