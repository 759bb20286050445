using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>Maps module types to the adapter that knows how to read them (an open table, not a type switch).</summary>
public sealed class LayerRegistry
{
    private readonly Dictionary<Type, Func<string, Module, ILayerAdapter?>> _factories = new();

    /// <summary>Linear, Conv2d, Embedding, LayerNorm and BatchNorm1d/2d/3d (affine parameters, eval mode).</summary>
    public static LayerRegistry Default { get; } = CreateDefault();

    private static LayerRegistry CreateDefault()
    {
        var r = new LayerRegistry();
        r.Register<Linear>((name, m) => new LinearAdapter(name, m));
        r.Register<Conv2d>((name, m) => new Conv2dAdapter(name, m));
        r.Register<Embedding>((name, m) => new EmbeddingAdapter(name, m));
        r.Register<LayerNorm>((name, m) => m.weight is null ? null : new LayerNormAdapter(name, m));
        r.Register<BatchNorm1d>((name, m) => m.affine ? new BatchNormAdapter(name, m) : null);
        r.Register<BatchNorm2d>((name, m) => m.affine ? new BatchNormAdapter(name, m) : null);
        r.Register<BatchNorm3d>((name, m) => m.affine ? new BatchNormAdapter(name, m) : null);
        return r;
    }

    /// <summary>Adds (or replaces) the adapter factory of a module type; the factory may return null for "no parameters to cover".</summary>
    public void Register<TModule>(Func<string, TModule, ILayerAdapter?> factory) where TModule : Module =>
        _factories[typeof(TModule)] = (name, m) => factory(name, (TModule)m);

    public bool TryCreate(string name, Module module, out ILayerAdapter? adapter)
    {
        adapter = _factories.TryGetValue(module.GetType(), out var f) ? f(name, module) : null;
        return adapter is not null;
    }

    /// <summary>True when the module type has an adapter.</summary>
    public bool Supports(Module module) => _factories.ContainsKey(module.GetType());

    public IEnumerable<string> SupportedKinds => _factories.Keys.Select(t => t.Name);
}
