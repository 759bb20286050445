using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using NaturalGradient.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kbfgs;

/// <summary>
/// K-BFGS over the covered layers: one <see cref="KbfgsBlock"/> per layer (block-diagonal). Besides the usual
/// <see cref="ICurvature"/> calls it needs <see cref="UpdateSecant"/> once per step, with statistics of the same batch
/// collected after the weights moved (the extra forward-backward pass of Goldfarb, Ren &amp; Bahamou 2020, algorithm 1).
/// </summary>
public sealed class KbfgsCurvature : ICurvature, ICurvatureState
{
    private readonly BlockDiagonalCurvature _blocks;

    public KbfgsCurvature(KbfgsOptions? options = null)
    {
        Options = (options ?? new KbfgsOptions()).Validate();
        _blocks = new BlockDiagonalCurvature(layer => new KbfgsBlock(layer, Options));
    }

    public KbfgsOptions Options { get; }

    /// <summary>The block of a layer (after its first update).</summary>
    public KbfgsBlock Block(string layerName) => (KbfgsBlock)_blocks.Block(layerName);

    public void Update(CurvatureBatch batch) => _blocks.Update(batch);

    /// <summary>Applies each layer's secant pair from <paramref name="after"/>; returns how many layers were updated.</summary>
    public int UpdateSecant(IReadOnlyList<LayerStatistics> after)
    {
        ArgumentNullException.ThrowIfNull(after);
        int updated = 0;
        foreach (var stats in after)
            if (Block(stats.Adapter.Name).UpdateSecant(stats)) updated++;
        return updated;
    }

    public IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping) =>
        _blocks.Precondition(layers, gradients, damping);

    public IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors) =>
        _blocks.Multiply(layers, vectors);

    /// <summary>Every block's state (<see cref="KbfgsBlock.ExportState"/>).</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state) => _blocks.ExportState(prefix, state);

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state, IReadOnlyList<ILayerAdapter> layers) =>
        _blocks.ImportState(prefix, state, layers);

    public void Dispose() => _blocks.Dispose();
}
