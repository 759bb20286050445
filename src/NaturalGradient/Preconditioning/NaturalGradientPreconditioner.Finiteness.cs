using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Preconditioning;

/// <summary>The finiteness checks of solves and steps: one fused sum per check, read once, confirmed entry by entry only when it is not finite.</summary>
public sealed partial class NaturalGradientPreconditioner
{
    /// <summary>
    /// True when every entry of every tensor is finite: one host read of <see cref="FiniteCheck"/>, and a second
    /// (<see cref="FiniteGuard.AllFinite"/>, entry by entry) only when that sum is not finite, which is also the case when
    /// finite entries sum beyond the dtype's range.
    /// </summary>
    public static bool AllFinite(IEnumerable<Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        var list = tensors as IReadOnlyCollection<Tensor> ?? tensors.ToList();
        return double.IsFinite(FiniteCheck(list).ToDouble()) || FiniteGuard.AllFinite(list);
    }

    /// <summary>
    /// One host read of <paramref name="scalar"/>'s value (in float64) and the <see cref="FiniteCheck"/> sum of
    /// <paramref name="tensors"/>, added on the host in float64: the per-tensor sums are stacked with the scalar and read
    /// together (the step's loss and finiteness in one read, with two native results fewer than a FiniteCheck tensor).
    /// Small contiguous CPU tensors, the scalar among them, are summed on the host instead (<see cref="HostSums"/>, in
    /// float64, no operator call): a NaN or ±∞ entry still makes the sum non-finite, and finite float32 entries cannot
    /// overflow it. With every tensor small there is no read at all.
    /// </summary>
    internal static (double Value, double Sum) ReadWithFiniteSum(Tensor scalar, IEnumerable<Tensor> tensors)
    {
        var parts = new List<Tensor>();
        bool valueOnHost = HostSums.TrySum(scalar, out double value);
        if (!valueOnHost) parts.Add(scalar);
        double sum = 0;
        foreach (var t in tensors)
        {
            if (HostSums.TrySum(t, out double part)) sum += part;
            else parts.Add(t.sum());
        }
        if (parts.Count == 0) return (value, sum);
        var read = HostRead.Doubles(FiniteGuard.StackForRead(parts));
        int i = 0;
        if (!valueOnHost) value = read[i++];
        for (; i < read.Length; i++) sum += read[i];
        return (value, sum);
    }

    /// <summary>
    /// Σ over all entries of <paramref name="tensors"/>, each tensor summed in its own dtype (one read pass, no
    /// conversion copy) and the sums added in float64; no host read. Finite when every entry is finite and no tensor's
    /// sum overflows its dtype: a non-finite value means an entry is NaN or ±∞ or the sum overflowed, which
    /// <see cref="FiniteGuard.AllFinite"/> tells apart.
    /// </summary>
    public static Tensor FiniteCheck(IEnumerable<Tensor> tensors)
    {
        var sums = tensors.Select(t => t.sum()).ToList();
        if (sums.Count == 0) return zeros(1, dtype: ScalarType.Float64).squeeze();
        // One kernel per tensor: the per-tensor sums are stacked and added in float64 (the sum widens as it reads).
        return FiniteGuard.StackForRead(sums).sum(ScalarType.Float64);
    }
}
