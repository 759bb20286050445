using NaturalGradient.Numerics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>
/// Records, for every covered layer of an ordinary TorchSharp model, its input and its output during a forward
/// pass (through forward hooks), and gives the gradients of any scalar with respect to those outputs.
/// From these come per-example gradients and every curvature statistic, without a per-example backward loop.
/// </summary>
/// <remarks>
/// <para>Hooks fire only for modules invoked with <c>call(...)</c>. Layers whose hook did not fire although they
/// contributed to a loss are reported by <see cref="ThrowIfBypassed"/>. Set <see cref="Enabled"/> to false
/// (or dispose) and the hooks return at once, so plain training pays nothing.</para>
/// <para>A layer may run several times in one forward (a shared module): every call is recorded and the calls are
/// concatenated as positions. Different modules that share a trainable tensor (weight tying) are covered as one
/// <see cref="TiedLayerAdapter"/> whose calls come from all of them; when that is not possible (a use IncludeLayer
/// excludes, a kind without tied layout) they keep their plain gradient (<see cref="UncoveredTies"/>). Calls whose output turns out not to reach the metric's scalar (a validation forward run
/// with gradients on) are ignored (<see cref="LayerCall.Connected"/>).</para>
/// <para>Coverage is per tensor: parameters with requires_grad = false are left out of every layer's W̄; a layer
/// with no trainable parameter is not covered. Changing requires_grad afterwards is refused at the next collection.</para>
/// <para>A BatchNorm layer that normalises with batch statistics couples the examples; collecting statistics while
/// one ran is refused with <see cref="BatchCouplingException"/>, whether or not the layer itself is covered.</para>
/// </remarks>
public sealed class LayerCapture : IDisposable
{
    private readonly List<CapturedLayer> _layers = new();
    private readonly List<Action> _removers = new();
    private readonly List<(CapturedLayer Layer, Parameter[] All, bool[] Trainable)> _trainableAtStart = new();
    private readonly Dictionary<string, string> _tensorNames = new();
    private (string Name, string Kind)? _coupling;

    /// <param name="model">The model whose layers to cover.</param>
    /// <param name="registry">Which module types are covered; <see cref="LayerRegistry.Default"/> if null.</param>
    /// <param name="include">Optional filter on the dotted module path; layers it rejects keep their plain gradient.</param>
    public LayerCapture(Module model, LayerRegistry? registry = null, Func<string, bool>? include = null)
    {
        Registry = registry ?? LayerRegistry.Default;
        Include = include;
        var candidates = new List<(string Name, Module Module, ILayerAdapter Adapter, bool Included)>();
        foreach (var (name, module) in model.named_modules())
        {
            if (module is NormBase norm) _removers.Add(AddCouplingHook(name, norm));
            ILayerAdapter? adapter;
            try
            {
                if (!Registry.TryCreate(name, module, out adapter)) continue;
            }
            catch (NotSupportedException e)
            {
                // A kind the registry knows in a configuration its adapter does not handle (a grouped Conv2d, reflect
                // padding, …): like an unknown kind, it keeps its plain gradient, and the report says why.
                UnsupportedLayers[name] = e.Message;
                continue;
            }
            if (adapter!.Parameters.Count == 0) continue;
            candidates.Add((name, module, adapter, include is null || include(name)));
        }
        // Layers that share a trainable tensor (weight tying across modules) form one group, found by storage identity.
        var tensorNames = _tensorNames;
        foreach (var (pname, p) in model.named_parameters()) tensorNames.TryAdd(TensorIdentity.Key(p), pname);
        var group = Enumerable.Range(0, candidates.Count).ToArray();
        int Root(int i) => group[i] == i ? i : group[i] = Root(group[i]);
        var firstUser = new Dictionary<string, int>();
        var users = new Dictionary<string, List<int>>();
        for (int i = 0; i < candidates.Count; i++)
            foreach (var p in candidates[i].Adapter.Parameters)
            {
                var key = TensorIdentity.Key(p);
                if (firstUser.TryGetValue(key, out int j)) group[Root(i)] = Root(j);
                else firstUser[key] = i;
                if (!users.TryGetValue(key, out var list)) users[key] = list = new List<int>();
                list.Add(i);
            }
        foreach (var members in Enumerable.Range(0, candidates.Count).GroupBy(Root).Select(g => g.ToList()))
        {
            if (members.Count == 1)
            {
                var (_, module, adapter, included) = candidates[members[0]];
                if (included) Cover(new CapturedLayer(adapter), new[] { module });
                continue;
            }
            var tiedKeys = users.Where(kv => kv.Value.Count > 1 && members.Contains(kv.Value[0])).Select(kv => kv.Key).ToList();
            var names = tiedKeys.Select(k => tensorNames.TryGetValue(k, out var n) ? n : k).ToList();
            string layers = string.Join(" and ", members.Select(i => $"'{candidates[i].Name}'"));
            var excluded = members.Where(i => !candidates[i].Included).Select(i => $"'{candidates[i].Name}'").ToList();
            string? reason = null;
            TiedLayerAdapter? tied = null;
            if (excluded.Count > 0)
                reason = $"tied across layers {layers}, and IncludeLayer excludes {string.Join(" and ", excluded)}";
            else if ((tied = TiedLayerAdapter.TryCreate(members.Select(i => candidates[i].Adapter).ToList(), names, out var why)) is null)
                reason = $"tied across layers {layers}: {why}";
            if (tied is not null)
                Cover(new CapturedLayer(tied), members.Select(i => candidates[i].Module).ToArray());
            else
                foreach (var k in tiedKeys) UncoveredTies[k] = reason!;
        }
    }

    /// <summary>Hooks every module of a covered layer (several for a tied layer: the call records which one it was).</summary>
    private void Cover(CapturedLayer layer, Module[] modules)
    {
        _layers.Add(layer);
        for (int u = 0; u < modules.Length; u++)
        {
            _removers.Add(AddHook(modules[u], layer, u));
            var all = modules[u].parameters(recurse: false).ToArray();
            _trainableAtStart.Add((layer, all, all.Select(p => p.requires_grad).ToArray()));
        }
    }

    /// <summary>
    /// Parameter tensors (by <see cref="TensorIdentity.Key"/>) shared by several layers that could not be covered together,
    /// with the reason; they keep their plain gradient. Tied tensors that are covered belong to a <see cref="TiedLayerAdapter"/>.
    /// </summary>
    public Dictionary<string, string> UncoveredTies { get; } = new();

    /// <summary>
    /// Layers (by dotted module path) whose kind has an adapter that refused this module's configuration, with the
    /// adapter's reason; their tensors keep their plain gradient.
    /// </summary>
    public Dictionary<string, string> UnsupportedLayers { get; } = new();

    /// <summary>The registry the layers were matched against.</summary>
    public LayerRegistry Registry { get; }

    /// <summary>The include filter given at construction (null = all).</summary>
    public Func<string, bool>? Include { get; }

    /// <summary>The covered layers in model order.</summary>
    public IReadOnlyList<CapturedLayer> Layers => _layers;

    /// <summary>When false the hooks record nothing. Default true.</summary>
    public bool Enabled { get; set; } = true;

    private Action AddHook(Module module, CapturedLayer layer, int use)
    {
        if (module is not Module<Tensor, Tensor> typed)
            throw new NotSupportedException($"layer '{layer.Name}' ({module.GetType().Name}) is not a single-input module");
        var remover = typed.register_forward_hook((_, input, output) =>
        {
            if (Enabled && is_grad_enabled() && output.requires_grad)
                layer.Record(input, output, use);
            return null!;
        });
        return remover.remove;
    }

    private Action AddCouplingHook(string name, NormBase norm)
    {
        var remover = norm.register_forward_hook((_, _, output) =>
        {
            if (Enabled && is_grad_enabled() && output.requires_grad && BatchNormAdapter.CouplesExamples(norm))
                _coupling ??= (name, norm.GetType().Name);
            return null!;
        });
        return remover.remove;
    }

    /// <summary>Forgets what the last forward pass recorded. Call before each new forward.</summary>
    public void Clear()
    {
        foreach (var l in _layers) l.Clear();
        _coupling = null;
    }

    /// <summary>Covered layers recorded at least once since the last <see cref="Clear"/>.</summary>
    /// <exception cref="BatchCouplingException">A BatchNorm layer ran with batch statistics.</exception>
    /// <exception cref="InvalidOperationException">A covered layer's parameters were frozen or unfrozen after construction.</exception>
    public IReadOnlyList<CapturedLayer> Recorded()
    {
        if (_coupling is { } c) throw new BatchCouplingException(c.Name, c.Kind);
        foreach (var (layer, all, trainable) in _trainableAtStart)
            for (int i = 0; i < all.Length; i++)
                if (all[i].requires_grad != trainable[i])
                    throw new InvalidOperationException(
                        $"a parameter of layer '{layer.Name}' ({layer.Adapter.KindName}) changed requires_grad to {all[i].requires_grad.ToString().ToLowerInvariant()} " +
                        "after the preconditioner was built; build a new preconditioner (or NaturalGradientDescent) after freezing or unfreezing parameters");
        return _layers.Where(l => l.IsRecorded).ToList();
    }

    /// <summary>
    /// Throws when a covered layer's tensors are no longer the model's: TorchSharp's <c>model.to(dtype or device)</c>
    /// replaces every parameter by a converted copy and disposes the old one, which the capture still holds. Reads only
    /// the tensors' handles (no kernel, no host sync).
    /// </summary>
    /// <exception cref="InvalidOperationException">The parameters were replaced after the capture was built.</exception>
    public void ThrowIfParametersReplaced()
    {
        foreach (var layer in _layers)
            foreach (var p in layer.Adapter.Parameters)
                if (p.IsInvalid)
                    throw new InvalidOperationException(
                        $"the parameters of layer '{layer.Name}' ({layer.Adapter.KindName}) were replaced after the preconditioner was built " +
                        "(model.to(dtype or device) replaces them): build the preconditioner (or NaturalGradientDescent) after converting or moving the model");
    }

    /// <summary>
    /// Throws <see cref="LayerNotObservedException"/> if a covered layer whose hook did not fire still contributed
    /// to <paramref name="scalar"/> (its weights receive a gradient): its curvature would silently be missing.
    /// Only trainable tensors are handed to autograd.
    /// </summary>
    public void ThrowIfBypassed(Tensor scalar)
    {
        var missing = _layers.Where(l => l.CallCount == 0 && l.Adapter.Parameters.Count > 0 && l.Adapter.Parameters[0].requires_grad).ToList();
        if (missing.Count == 0 || !scalar.requires_grad) return;
        var weights = missing.Select(l => (Tensor)l.Adapter.Parameters[0]).ToList();
        var grads = autograd.grad(new[] { scalar }, weights, retain_graph: true, allow_unused: true);
        for (int i = 0; i < missing.Count; i++)
        {
            bool used = grads[i] is not null && !grads[i].IsInvalid;
            if (used) throw new LayerNotObservedException(missing[i].Name, missing[i].Adapter.KindName);
        }
    }

    /// <summary>Relative difference above which <see cref="ThrowIfUsedOutside"/> refuses a tensor (float32 sums agree to ~10⁻⁶).</summary>
    public const double OutsideUseTolerance = 1e-3;

    /// <summary>
    /// Throws <see cref="TensorUsedOutsideLayerException"/> when a covered tensor's gradient of <paramref name="scalar"/>
    /// is not the sum of what its layer's recorded calls give (Σ over examples and positions of δ āᵀ): the tensor is
    /// also used outside its module (functionally) or the module also ran through forward(x). The difference of each
    /// tensor is measured against the norm of its layer's whole gradient (a tensor whose gradient vanishes, like an
    /// attention key's bias, is not judged on rounding alone). Two backward passes (the graph is kept) and one host
    /// read; run it once, on the first batch.
    /// </summary>
    /// <returns>False when the gradients are not finite and nothing could be decided (check again on a later batch).</returns>
    public bool ThrowIfUsedOutside(Tensor scalar, IReadOnlyList<CapturedLayer> layers)
    {
        if (!scalar.requires_grad || layers.Count == 0) return true;
        using var scope = NewDisposeScope();
        var perCall = CallGradients(scalar, layers);
        var parameters = layers.SelectMany(l => l.Adapter.Parameters).ToList();
        var actual = autograd.grad(new[] { scalar }, parameters.Cast<Tensor>().ToList(), retain_graph: true, allow_unused: true);
        var differences = new List<Tensor>(parameters.Count);
        var scales = new List<Tensor>(parameters.Count);
        var owners = new List<(CapturedLayer Layer, Parameter Tensor)>(parameters.Count);
        int k = 0;
        for (int l = 0; l < layers.Count; l++)
        {
            var expected = layers[l].Adapter.SplitMatrix(layers[l].Statistics(new[] { perCall[l] }, 1.0).GradientSum());
            var norms = new List<Tensor>(expected.Count);
            for (int i = 0; i < expected.Count; i++, k++)
            {
                var p = layers[l].Adapter.Parameters[i];
                var got = (actual[k] is { IsInvalid: false } a ? a.detach() : zeros_like(p)).to_type(ScalarType.Float64);
                var e = expected[i].to_type(ScalarType.Float64);
                differences.Add((got - e).norm());
                norms.Add(got.norm() + e.norm());
                owners.Add((layers[l], p));
            }
            var layerScale = stack(norms.ToArray()).sum();
            scales.AddRange(norms.Select(_ => layerScale));
        }
        var d = stack(differences.ToArray());
        var scale = stack(scales.ToArray());
        var values = HostRead.Doubles(d / (scale + 1e-12 * scale.max() + 1e-300));
        if (values.Any(v => !double.IsFinite(v))) return false;
        for (int i = 0; i < values.Length; i++)
            if (values[i] > OutsideUseTolerance)
            {
                var (layer, p) = owners[i];
                string name = _tensorNames.TryGetValue(TensorIdentity.Key(p), out var n) ? n : layer.Name;
                throw new TensorUsedOutsideLayerException(name, layer.Name, layer.Adapter.KindName, values[i]);
            }
        return true;
    }

    /// <summary>
    /// Gradients of <paramref name="scalar"/> with respect to every recorded call's output, per layer in the order of
    /// <paramref name="layers"/>, one entry per call (detached; null where the call is outside the scalar's graph).
    /// One backward pass; the graph is kept (retain_graph) for further passes.
    /// </summary>
    public IReadOnlyList<Tensor?[]> CallGradients(Tensor scalar, IReadOnlyList<CapturedLayer> layers, bool retainGraph = true)
    {
        var grads = autograd.grad(new[] { scalar }, Outputs(layers), retain_graph: retainGraph, allow_unused: true);
        return ByLayer(layers, k => grads[k] is { IsInvalid: false } g ? g.detach() : null);
    }

    /// <summary>Every recorded call's output, layer by layer.</summary>
    private static List<Tensor> Outputs(IReadOnlyList<CapturedLayer> layers) => layers.SelectMany(l => l.Calls).Select(c => c.Output).ToList();

    /// <summary>Per-call entries k = 0, 1, … (in the order of <see cref="Outputs"/>) grouped by layer, one array per layer.</summary>
    private static IReadOnlyList<Tensor?[]> ByLayer(IReadOnlyList<CapturedLayer> layers, Func<int, Tensor?> entry)
    {
        var result = new List<Tensor?[]>(layers.Count);
        int k = 0;
        foreach (var layer in layers)
        {
            var perCall = new Tensor?[layer.CallCount];
            for (int c = 0; c < perCall.Length; c++, k++) perCall[c] = entry(k);
            result.Add(perCall);
        }
        return result;
    }

    /// <summary>
    /// The backward pass of <paramref name="scalar"/> taken only as far as it is needed: its gradients at every recorded
    /// call's output (returned as <see cref="CallGradients"/> returns them) and at <paramref name="parameters"/>
    /// (accumulated into their .grad, as <c>backward()</c> does); autograd computes no other parameter's gradient, so
    /// a layer whose gradient is formed from its statistics costs no weight-gradient product. One pass; the graph is freed.
    /// </summary>
    /// <param name="scalar">The loss (a scalar with an autograd graph).</param>
    /// <param name="layers">The recorded layers, in model order.</param>
    /// <param name="parameters">The parameters whose .grad the pass fills (each once; those outside the graph keep theirs).</param>
    internal IReadOnlyList<Tensor?[]> BackwardToCalls(Tensor scalar, IReadOnlyList<CapturedLayer> layers, IReadOnlyList<Parameter> parameters)
    {
        var grads = BackwardTo(scalar, Outputs(layers), parameters);
        return ByLayer(layers, k => grads[k]);
    }

    /// <summary>
    /// One backward pass of <paramref name="scalar"/> to <paramref name="outputs"/> (their gradients returned, null for
    /// one outside the graph) and <paramref name="parameters"/> (accumulated into .grad); no other gradient is computed.
    /// The graph is freed.
    /// </summary>
    internal static Tensor?[] BackwardTo(Tensor scalar, IReadOnlyList<Tensor> outputs, IReadOnlyList<Parameter> parameters)
    {
        var inputs = new List<Tensor>(outputs.Count + parameters.Count);
        inputs.AddRange(outputs);
        inputs.AddRange(parameters);
        var grads = autograd.grad(new[] { scalar }, inputs, retain_graph: false, allow_unused: true);
        for (int j = 0; j < parameters.Count; j++)
        {
            if (grads[outputs.Count + j] is not { IsInvalid: false } g) continue;
            if (parameters[j].grad is { } existing) existing.add_(g);
            else parameters[j].grad = g;
        }
        var result = new Tensor?[outputs.Count];
        for (int i = 0; i < result.Length; i++) result[i] = grads[i] is { IsInvalid: false } g ? g : null;
        return result;
    }

    public void Dispose()
    {
        foreach (var r in _removers) r();
        _removers.Clear();
        Clear();
    }
}
