using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature;

/// <summary>A block-diagonal metric: one <see cref="ICurvatureBlock"/> per layer, created on first sight of the layer.</summary>
public sealed partial class BlockDiagonalCurvature : ICurvature
{
    private readonly Func<ILayerAdapter, ICurvatureBlock> _createBlock;
    private readonly Dictionary<string, ICurvatureBlock> _blocks = new();

    public BlockDiagonalCurvature(Func<ILayerAdapter, ICurvatureBlock> createBlock) => _createBlock = createBlock;

    /// <summary>The block of a layer (after its first update).</summary>
    public ICurvatureBlock Block(string layerName) =>
        _blocks.TryGetValue(layerName, out var b) ? b : throw new KeyNotFoundException($"no curvature block for layer '{layerName}' yet");

    public void Update(CurvatureBatch batch)
    {
        foreach (var stats in batch.Layers)
        {
            if (!_blocks.TryGetValue(stats.Adapter.Name, out var block))
                _blocks[stats.Adapter.Name] = block = _createBlock(stats.Adapter);
            block.Update(stats, batch.Step);
        }
    }

    public IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping) =>
        layers.Select((l, i) => Block(l.Name).Precondition(gradients[i], damping)).ToList();

    public IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors) =>
        layers.Select((l, i) => Block(l.Name).Multiply(vectors[i])).ToList();

    public Tensor QuadraticForm(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors)
    {
        Tensor total = zeros(1, dtype: ScalarType.Float64).squeeze();
        for (int i = 0; i < layers.Count; i++) total = total.add_(Block(layers[i].Name).QuadraticForm(vectors[i]));
        return total;
    }

    public void Dispose()
    {
        foreach (var b in _blocks.Values) b.Dispose();
        _blocks.Clear();
    }
}
