using NaturalGradient.Capture;
using NaturalGradient.Optim;

namespace NaturalGradient.Curvature;

public sealed partial class BlockDiagonalCurvature : ICurvatureState
{
    /// <summary>Writes, for every block that keeps state across steps, a marker <c>{prefix}{layer}.present</c> and the block's state.</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        foreach (var (name, block) in _blocks)
        {
            if (block is not ICurvatureBlockState stateful) continue;
            state.Numbers[$"{prefix}{name}.present"] = 1;
            stateful.ExportState($"{prefix}{name}.", state);
        }
    }

    /// <summary>Drops the current blocks and rebuilds those the state names, for the given layers.</summary>
    public void ImportState(string prefix, NaturalGradientStateDict state, IReadOnlyList<ILayerAdapter> layers)
    {
        var known = layers.Select(l => l.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var key in state.Numbers.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && k.EndsWith(".present", StringComparison.Ordinal)))
        {
            var name = key[prefix.Length..^".present".Length];
            if (!known.Contains(name))
                throw new InvalidDataException($"the state holds a curvature block for layer '{name}', which this model does not have");
        }
        var fresh = new Dictionary<string, ICurvatureBlock>();
        try
        {
            foreach (var layer in layers)
            {
                if (!state.Numbers.ContainsKey($"{prefix}{layer.Name}.present")) continue;
                var block = _createBlock(layer);
                fresh[layer.Name] = block;
                if (block is not ICurvatureBlockState stateful)
                    throw new InvalidDataException($"the state holds a curvature block for layer '{layer.Name}', but this method keeps none");
                stateful.ImportState($"{prefix}{layer.Name}.", state);
            }
        }
        catch
        {
            foreach (var b in fresh.Values) b.Dispose();
            throw;
        }
        foreach (var b in _blocks.Values) b.Dispose();
        _blocks.Clear();
        foreach (var (name, block) in fresh) _blocks[name] = block;
    }
}
