using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Auto;

/// <summary>
/// Block-diagonal natural gradient whose blocks are chosen per layer by cost (<see cref="StructureCostModel"/>): TENGraD's
/// exact Woodbury block where the batch is small against the layer, K-FAC where it is large. The decisions are in
/// <see cref="Choices"/> (model order of first sight) and are reported through <see cref="Chosen"/> as they are made.
/// </summary>
public sealed class AutoCurvature : ICurvature, ICurvatureState
{
    private readonly BlockDiagonalCurvature _blocks;
    private readonly List<LayerStructureChoice> _choices = new();

    public AutoCurvature(MetricForm form = MetricForm.Uncentered, KfacOptions? kfac = null)
    {
        var options = (kfac ?? new KfacOptions()).Validate();
        _blocks = new BlockDiagonalCurvature(layer => new AutoStructureBlock(layer, form, options, choice =>
        {
            _choices.Add(choice);
            Chosen?.Invoke(choice);
        }));
    }

    /// <summary>Raised once per layer when its block is chosen (at the first update that sees it).</summary>
    public event Action<LayerStructureChoice>? Chosen;

    /// <summary>Every decision so far.</summary>
    public IReadOnlyList<LayerStructureChoice> Choices => _choices;

    /// <summary>The block of a layer (after its first update).</summary>
    public AutoStructureBlock Block(string layerName) => (AutoStructureBlock)_blocks.Block(layerName);

    public void Update(CurvatureBatch batch) => _blocks.Update(batch);

    public IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping) =>
        _blocks.Precondition(layers, gradients, damping);

    /// <summary>Each layer's block takes its own kind's mean-gradient route, as it would outside auto.</summary>
    public IReadOnlyList<Tensor> PreconditionMeanGradient(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients,
        IReadOnlyList<Fisher.LayerStatistics> statistics, double damping) =>
        _blocks.PreconditionMeanGradient(layers, gradients, statistics, damping);

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> PreconditionMeanGradient(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients,
        IReadOnlyList<Fisher.LayerStatistics> statistics, double damping, Tensor?[]? innerProducts) =>
        _blocks.PreconditionMeanGradient(layers, gradients, statistics, damping, innerProducts);

    public IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors) =>
        _blocks.Multiply(layers, vectors);

    /// <summary>Every layer's decision and, for K-FAC layers, its block's state (<see cref="AutoStructureBlock.ExportState"/>).</summary>
    public void ExportState(string prefix, Optim.NaturalGradientStateDict state) => _blocks.ExportState(prefix, state);

    /// <inheritdoc/>
    /// <remarks>The restored decisions are added to <see cref="Choices"/> and raised through <see cref="Chosen"/> again.</remarks>
    public void ImportState(string prefix, Optim.NaturalGradientStateDict state, IReadOnlyList<ILayerAdapter> layers)
    {
        var before = _choices.Count;
        try { _blocks.ImportState(prefix, state, layers); }
        catch { _choices.RemoveRange(before, _choices.Count - before); throw; }
        _choices.RemoveRange(0, before);   // the blocks they described were replaced
    }

    public void Dispose() => _blocks.Dispose();
}
