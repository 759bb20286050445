using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>Maps module types to the adapter that knows how to read them (an open table, not a type switch).</summary>
public sealed class LayerRegistry
{
    private readonly Dictionary<Type, Func<string, Module, ILayerAdapter>> _factories = new();

    /// <summary>Linear and Conv2d.</summary>
    public static LayerRegistry Default { get; } = CreateDefault();

    private static LayerRegistry CreateDefault()
    {
        var r = new LayerRegistry();
        r.Register<Linear>((name, m) => new LinearAdapter(name, m));
        r.Register<Conv2d>((name, m) => new Conv2dAdapter(name, m));
        return r;
    }

    public void Register<TModule>(Func<string, TModule, ILayerAdapter> factory) where TModule : Module =>
        _factories[typeof(TModule)] = (name, m) => factory(name, (TModule)m);

    public bool TryCreate(string name, Module module, out ILayerAdapter? adapter)
    {
        adapter = _factories.TryGetValue(module.GetType(), out var f) ? f(name, module) : null;
        return adapter is not null;
    }

    public IEnumerable<string> SupportedKinds => _factories.Keys.Select(t => t.Name);
}
