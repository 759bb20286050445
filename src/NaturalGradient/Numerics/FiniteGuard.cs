using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// The step's finiteness decisions, each one fused scalar and one host sync, however many layers there are.
/// </summary>
/// <remarks>
/// <para><b>Statistics.</b> Every curvature matrix the library forms from one batch is bounded entrywise by the
/// squared norms of the captured activations Ā and output gradients D of the layer (Cauchy–Schwarz):
/// a metric entry by w‖Ā‖²‖D‖² (per-sample gradients gᵢₛ = Σₜ δᵢₛₜāᵢₜᵀ have ‖gᵢₛ‖² ≤ ‖Dᵢₛ‖²‖Āᵢ‖²), a Gram entry
/// (ĀĀᵀ ∘ DDᵀ) by ‖Ā‖²‖D‖², K-FAC's A by ‖Ā‖²/m and G by w‖D‖², EKFAC's scaling by w‖Ā‖²‖D‖². So one scalar
/// B = Σ_l (max(w, 1) ‖Ā_l‖²‖D_l‖² + ‖Ā_l‖² + ‖D_l‖²) decides for all of them: the batch may enter long-lived state
/// (running averages, eigenbases, scalings) only when B is finite and at most <see cref="Headroom"/> times the largest
/// number of the statistics' dtype. A batch with a finite loss but an overflowing ĀĀᵀ (a feature of 1e20 in float32)
/// fails this check before any factor is formed.</para>
/// <para><b>Directions.</b> The solved directions (and any plain gradients applied with them) are checked together:
/// one reduction of per-tensor isfinite().all() flags.</para>
/// </remarks>
public static class FiniteGuard
{
    /// <summary>Fraction of the dtype's largest value the bound B may reach (room for sums over layers, damping and solves).</summary>
    public const double Headroom = 1e-4;

    /// <summary>The bound B of the remarks as a float64 scalar tensor on the statistics' device (no host sync).
    /// A non-finite <paramref name="output"/> makes it NaN.</summary>
    public static Tensor StatisticsBound(IReadOnlyList<LayerStatistics> statistics, Tensor? output = null)
    {
        using var scope = NewDisposeScope();
        Tensor total;
        if (statistics.Count == 0) total = zeros(1, dtype: ScalarType.Float64).squeeze();
        else
        {
            // One norm per tensor (the statistics are detached), then the bound for all layers at once: two kernels per
            // layer, whatever the layer count; the norms are stacked in their dtype and squared in float64.
            var norms = new Tensor[2 * statistics.Count];
            for (int i = 0; i < statistics.Count; i++)
            {
                var delta = statistics[i].OutputGradients;
                norms[2 * i] = statistics[i].Tokens is { } tokens   // one-hot rows: ‖ā‖² = m · T
                    ? tensor(Math.Sqrt(tokens.numel()), dtype: delta.dtype, device: delta.device)
                    : statistics[i].Activations.norm();
                norms[2 * i + 1] = delta.norm();
            }
            var squares = (norms.All(n => n.dtype == norms[0].dtype) ? stack(norms) : stack(norms.Select(n => n.to_type(ScalarType.Float64)).ToArray()))
                .to_type(ScalarType.Float64).view(-1, 2).square();                     // ‖Ā_l‖², ‖D_l‖²
            var weights = tensor(statistics.Select(s => Math.Max(s.Weight, 1.0)).ToArray(), dtype: ScalarType.Float64, device: squares.device);
            var a = squares.select(1, 0);
            var d = squares.select(1, 1);
            total = a.mul(d).mul_(weights).add_(a).add_(d).sum();
        }
        if (output is not null) total = total + output.detach().sum().to_type(ScalarType.Float64) * 0.0; // NaN/∞ output → NaN
        return scope.MoveToOuter(total);
    }

    /// <summary>
    /// True when the statistics may enter the curvature: B finite and ≤ <see cref="Headroom"/> · max(dtype).
    /// One host sync.
    /// </summary>
    public static bool StatisticsAreSafe(IReadOnlyList<LayerStatistics> statistics, Tensor? output = null)
    {
        if (statistics.Count == 0) return true;
        using var scope = NewDisposeScope();
        double bound = StatisticsBound(statistics, output).item<double>();
        return double.IsFinite(bound) && bound <= Headroom * LargestValue(statistics[0].Dtype);
    }

    /// <summary>True when every tensor is entirely finite. One host sync for the whole list.</summary>
    public static bool AllFinite(IEnumerable<Tensor> tensors)
    {
        using var scope = NewDisposeScope();
        var flags = tensors.Select(t => t.isfinite().all()).ToArray();
        if (flags.Length == 0) return true;
        return stack(flags).all().item<bool>();
    }

    /// <summary>The largest finite value of a floating dtype.</summary>
    public static double LargestValue(ScalarType dtype) => dtype switch
    {
        ScalarType.Float16 => 65504.0,
        ScalarType.BFloat16 => 3.3895313892515355e38,
        ScalarType.Float32 => float.MaxValue,
        _ => double.MaxValue,
    };

    /// <summary>
    /// Throws when <paramref name="damping"/> cannot be represented in <paramref name="dtype"/> (1e300 in float32), before
    /// libtorch raises its overflow error in the middle of a solve.
    /// </summary>
    /// <exception cref="ArgumentException">One line naming the damping, the dtype and what to do.</exception>
    public static void DampingFits(double damping, ScalarType dtype)
    {
        if (damping > LargestValue(dtype))
            throw new ArgumentException(
                $"damping {damping:G3} does not fit the model's {dtype} (largest {LargestValue(dtype):G3}); use a smaller damping or a float64 model");
    }
}
