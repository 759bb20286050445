using NaturalGradient.Fisher;
using static TorchSharp.torch;

namespace NaturalGradient.Preconditioning;

/// <summary>
/// Makes one process's share of a data-parallel step global: each process sees a shard of the global batch, and
/// the reducer turns its local gradients and curvature statistics into those of the whole batch, so that every
/// process takes the step a single process would take on the global batch.
/// </summary>
/// <remarks>Set on <see cref="NaturalGradientPreconditioner.Reducer"/>; null (the default) means one process.</remarks>
public interface IDataParallelReducer
{
    /// <summary>
    /// Replaces each gradient in place (gradients of this shard's mean loss) by the gradient of the global batch's
    /// mean loss; every process passes its parameters' gradients in the same order.
    /// </summary>
    void ReduceGradients(IReadOnlyList<Tensor> gradients);

    /// <summary>
    /// This shard's per-layer statistics (activations m_r × T × in', output gradients s × m_r × T × out, weight for
    /// m_r examples) → the global batch's (m = Σ m_r examples, in process order, weight rescaled to m).
    /// </summary>
    IReadOnlyList<LayerStatistics> ReduceStatistics(IReadOnlyList<LayerStatistics> local);
}
