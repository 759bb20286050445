using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// A long-lived tensor X kept as the running average X ← β X + (1 − β) X_batch (the first update takes X_batch as
/// it is; shared/notes/curvature-conventions.md). The value is detached from every dispose scope and owned here:
/// it is disposed when replaced and in <see cref="Dispose"/>.
/// </summary>
internal sealed partial class RunningAverage : IDisposable
{
    private Tensor? _value;

    /// <summary>The current average (owned; callers must not dispose it), or null before the first update.</summary>
    public Tensor? Value => _value;

    public bool HasValue => _value is not null;

    /// <summary>X ← β X + (1 − β) X_batch in place, or X ← X_batch on the first call. <paramref name="batch"/> is not consumed.</summary>
    public void Update(Tensor batch, double decay)
    {
        if (_value is null || !_value.shape.SequenceEqual(batch.shape) || _value.dtype != batch.dtype)
        {
            using var scope = NewDisposeScope();
            Replace(batch.detach().clone());
            return;
        }
        _value.mul_(decay).add_(batch.detach(), alpha: 1 - decay);   // in place: the long-lived buffer is kept
    }

    /// <summary>Takes <paramref name="value"/> as the new average (it is detached from its dispose scope and owned here).</summary>
    public void Replace(Tensor value)
    {
        value.DetachFromDisposeScope();
        _value?.Dispose();
        _value = value;
    }

    public void Dispose()
    {
        _value?.Dispose();
        _value = null;
    }
}
