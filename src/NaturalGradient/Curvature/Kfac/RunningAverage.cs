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

    private long[]? _shape;   // _value's shape, read once per replacement (a shape is a native call)

    public bool HasValue => _value is not null;

    /// <summary>X ← β X + (1 − β) X_batch in place, or X ← X_batch on the first call. <paramref name="batch"/> is not consumed.</summary>
    public void Update(Tensor batch, double decay)
    {
        if (_value is null || !_shape!.SequenceEqual(batch.Sizes()) || _value.dtype != batch.dtype)
        {
            using var scope = NewDisposeScope();
            Replace(batch.detach().clone());
            return;
        }
        _value.mul_(decay).add_(batch.detach(), alpha: 1 - decay);   // in place: the long-lived buffer is kept
    }

    /// <summary>
    /// X ← β X + (1 − β) c · LᵀR in place by one GEMM (addmm with β and α = (1 − β) c) for the rows L (n × d₁) and
    /// R (n × d₂): no batch matrix and no element-wise passes. Returns false, leaving X alone, when that does not apply:
    /// before the first update, when X's shape or dtype differs, and for float64 (addmm's scalars are single precision
    /// in TorchSharp, which would round β and (1 − β) c); the caller then forms the batch matrix and calls <see cref="Update"/>.
    /// </summary>
    /// <param name="left">L, n × d₁ rows.</param>
    /// <param name="right">R, n × d₂ rows (the same tensor as L for a Gram).</param>
    /// <param name="scale">c, the product's scale.</param>
    /// <param name="decay">β ∈ [0, 1).</param>
    /// <param name="precision">
    /// <see cref="KfacFactorPrecision.Bfloat16"/>: for float32 rows, the product LᵀR is formed by a bfloat16 GEMM and added
    /// to X (<see cref="AccumulateBFloat16Product"/>).
    /// </param>
    public bool TryAccumulateGram(Tensor left, Tensor right, double scale, double decay, KfacFactorPrecision precision = KfacFactorPrecision.Model)
    {
        if (_value is null || left.dtype == ScalarType.Float64 || _value.dtype != left.dtype || _shape!.Length != 2)
            return false;
        long width = left.size(1);
        if (_shape[0] != width || _shape[1] != (ReferenceEquals(left, right) ? width : right.size(1))) return false;
        float beta = (float)decay, alpha = (float)((1 - decay) * scale);
        if (precision == KfacFactorPrecision.Bfloat16 && left.dtype == ScalarType.Float32)
            AccumulateBFloat16Product(_value, left, right, beta, alpha);
        else if (ReferenceEquals(left, right) && width >= SymmetricSplitDimension)
            AccumulateSymmetricGram(_value, left, beta, alpha);
        else
            _value.addmm_(left.t(), right, beta: beta, alpha: alpha);
        return true;
    }

    /// <summary>
    /// From this width on, a Gram LᵀL is accumulated as a symmetric matrix (<see cref="AccumulateSymmetricGram"/>):
    /// three quarters of the GEMM's flops. Narrower factors take one addmm (the split's extra calls cost more than they save).
    /// </summary>
    internal const long SymmetricSplitDimension = 384;

    /// <summary>
    /// X ← βX + α LᵀL for the rows L (n × d) with X symmetric, by 2 × 2 column blocks of L = [L₁ L₂]: the diagonal blocks
    /// L₁ᵀL₁, L₂ᵀL₂ and the off-diagonal block L₁ᵀL₂ by addmm into views of X, the other off-diagonal block copied as its
    /// transpose (the SYRK idea: 3/4 of the full product's 2nd² flops).
    /// </summary>
    internal static void AccumulateSymmetricGram(Tensor x, Tensor rows, float beta, float alpha)
    {
        long d = rows.size(1), h = d / 2;
        var first = rows.narrow(1, 0, h);
        var second = rows.narrow(1, h, d - h);
        x.narrow(0, 0, h).narrow(1, 0, h).addmm_(first.t(), first, beta: beta, alpha: alpha);
        x.narrow(0, h, d - h).narrow(1, h, d - h).addmm_(second.t(), second, beta: beta, alpha: alpha);
        using var upper = x.narrow(0, 0, h).narrow(1, h, d - h);
        upper.addmm_(first.t(), second, beta: beta, alpha: alpha);
        x.narrow(0, h, d - h).narrow(1, 0, h).copy_(upper.t());
    }

    /// <summary>
    /// X ← βX + α LᵀR with L and R rounded to bfloat16 and multiplied by a bfloat16 GEMM; the product (rounded to
    /// bfloat16) is added to the float32 X in one pass (<see cref="KfacFactorPrecision.Bfloat16"/>).
    /// </summary>
    internal static void AccumulateBFloat16Product(Tensor x, Tensor left, Tensor right, float beta, float alpha)
    {
        using var scope = NewDisposeScope();
        var low = left.to_type(ScalarType.BFloat16);
        var product = low.t().mm(ReferenceEquals(left, right) ? low : right.to_type(ScalarType.BFloat16));
        x.mul_(beta).add_(product, alpha: alpha);
    }

    /// <summary>Takes <paramref name="value"/> as the new average (it is detached from its dispose scope and owned here).</summary>
    public void Replace(Tensor value)
    {
        value.DetachFromDisposeScope();
        _value?.Dispose();
        _value = value;
        _shape = value.Sizes();
    }

    public void Dispose()
    {
        _value?.Dispose();
        _value = null;
        _shape = null;
    }
}
