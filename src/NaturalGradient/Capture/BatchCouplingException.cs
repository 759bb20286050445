namespace NaturalGradient.Capture;

/// <summary>
/// A BatchNorm layer normalised with the batch's own statistics (training mode, or track_running_stats = false), so each
/// example's output depends on every example of the batch: per-example gradients — hence every Fisher block of that
/// layer and of all layers before it — are not defined by one example alone. NaturalGradient refuses rather than give a
/// silently wrong metric.
/// </summary>
public sealed class BatchCouplingException : InvalidOperationException
{
    public BatchCouplingException(string layerName, string kind)
        : base($"layer '{layerName}' ({kind}) normalises with batch statistics (training mode), which couples the examples of a batch: " +
               "the per-example gradients and Fisher blocks of this layer and of every layer before it would be wrong. " +
               $"Put it in eval mode for training with natural gradient ({layerName}.eval(), running statistics frozen), " +
               "or replace it by GroupNorm or LayerNorm.")
    {
        LayerName = layerName;
    }

    public string LayerName { get; }
}
