using NaturalGradient.Numerics;
using NaturalGradient.Capture;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Auto;

/// <summary>
/// A layer's block under <see cref="CurvatureStructure.Auto"/>: on its first <see cref="Update"/> it reads the batch's
/// shapes, asks <see cref="StructureCostModel"/> and becomes a <see cref="TengradBlock"/> or a <see cref="KfacBlock"/>
/// for the rest of the run (K-FAC's running averages would not survive a switch).
/// </summary>
public sealed partial class AutoStructureBlock : ICurvatureBlock, IFactorizingBlock
{
    private readonly ILayerAdapter _layer;
    private readonly MetricForm _form;
    private readonly KfacOptions _kfac;
    private readonly Action<LayerStructureChoice>? _chosen;
    private ICurvatureBlock? _inner;

    /// <param name="layer">The covered layer.</param>
    /// <param name="form">Metric form for TENGraD (K-FAC uses the uncentred Fisher).</param>
    /// <param name="kfac">K-FAC settings (its inverse method and period also enter the cost model).</param>
    /// <param name="chosen">Called once with the decision.</param>
    public AutoStructureBlock(ILayerAdapter layer, MetricForm form, KfacOptions kfac, Action<LayerStructureChoice>? chosen = null)
    {
        _layer = layer;
        _form = form;
        _kfac = kfac.Validate();
        _chosen = chosen;
    }

    /// <summary>The decision (null before the first update).</summary>
    public LayerStructureChoice? Choice { get; private set; }

    /// <summary>The block in use (null before the first update).</summary>
    public ICurvatureBlock? Inner => _inner;

    public void Update(LayerStatistics statistics, long step) => Choose(statistics).Update(statistics, step);

    /// <inheritdoc cref="IFactorizingBlock.Update"/>
    void IFactorizingBlock.Update(LayerStatistics statistics, long step, FactorizationQueue queue)
    {
        if (Choose(statistics) is IFactorizingBlock factorizing) factorizing.Update(statistics, step, queue);
        else _inner!.Update(statistics, step);
    }

    /// <inheritdoc/>
    void IFactorizingBlock.QueueSolve(double damping, FactorizationQueue queue) => (_inner as IFactorizingBlock)?.QueueSolve(damping, queue);

    /// <summary>The inner block, chosen on the first call from the statistics' shapes.</summary>
    private ICurvatureBlock Choose(LayerStatistics statistics)
    {
        if (_inner is null)
        {
            Choice = StructureCostModel.Choose(_layer.Name, statistics.BatchSize, statistics.SampleCount, statistics.Positions,
                _layer.InputDim, _layer.OutputDim, _kfac, DiagonalActivation.Applies(_layer));
            // Layers that are not Kronecker-factored (LayerNorm, BatchNorm, a tensor tied in transposed layouts) always take TENGraD's exact block.
            bool kronecker = _layer.IsKronecker && _layer is not TiedLayerAdapter { KroneckerFactored: false };
            _inner = Choice.Choice == LayerStructure.Tengrad || !kronecker ? new TengradBlock(_form) : new KfacBlock(_layer, _kfac);
            _chosen?.Invoke(Choice);
        }
        return _inner;
    }

    private ICurvatureBlock Inner_ => _inner ?? throw new InvalidOperationException($"the block of layer '{_layer.Name}' has no statistics yet: call Update first");

    public Tensor Precondition(Tensor gradient, double damping) => Inner_.Precondition(gradient, damping);

    public Tensor? PreconditionMeanGradient(LayerStatistics statistics, double damping) => Inner_.PreconditionMeanGradient(statistics, damping);

    public MeanGradientDirection? PreconditionMeanGradient(LayerStatistics statistics, double damping, bool innerProduct) =>
        Inner_.PreconditionMeanGradient(statistics, damping, innerProduct);

    public Tensor Multiply(Tensor v) => Inner_.Multiply(v);

    public Tensor ToDense() => Inner_.ToDense();

    public double MeanCurvature() => Inner_.MeanCurvature();

    public void Dispose() => _inner?.Dispose();
}
