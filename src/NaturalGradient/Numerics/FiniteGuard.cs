using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// The step's finiteness decisions, each one host read however many layers there are.
/// </summary>
/// <remarks>
/// <para><b>Statistics.</b> Every curvature matrix the library forms from one batch is bounded entrywise by the
/// squared norms of the captured activations Ā and output gradients D of the layer (Cauchy–Schwarz):
/// a metric entry by w‖Ā‖²‖D‖² (per-sample gradients gᵢₛ = Σₜ δᵢₛₜāᵢₜᵀ have ‖gᵢₛ‖² ≤ ‖Dᵢₛ‖²‖Āᵢ‖²), a Gram entry
/// (ĀĀᵀ ∘ DDᵀ) by ‖Ā‖²‖D‖², K-FAC's A by ‖Ā‖²/m and G by w‖D‖², EKFAC's scaling by w‖Ā‖²‖D‖². So one scalar
/// B = Σ_l (max(w, 1) ‖Ā_l‖²‖D_l‖² + ‖Ā_l‖² + ‖D_l‖²) decides for all of them: the batch may enter long-lived state
/// (running averages, eigenbases, scalings) only when B is finite and at most <see cref="Headroom"/> times the largest
/// number of the statistics' dtype. A batch with a finite loss but an overflowing ĀĀᵀ (a feature of 1e20 in float32)
/// fails this check before any factor is formed. The 2L norms (and the output's sum) are read together, in their dtype
/// (widened exactly on the host), and B is formed on the host in float64; small contiguous CPU tensors (the figure-5
/// nets' layers) are summed on the host in float64 instead (<see cref="HostSums"/>), with no operator call.</para>
/// <para><b>Directions.</b> <see cref="AllFinite"/> checks a list of tensors entry by entry with one reduction of
/// per-tensor isfinite().all() flags; the step itself reads the cheaper sum of
/// <see cref="Preconditioning.NaturalGradientPreconditioner.FiniteCheck"/> first and calls it only when that sum is not
/// finite.</para>
/// </remarks>
public static class FiniteGuard
{
    /// <summary>Fraction of the dtype's largest value the bound B may reach (room for sums over layers, damping and solves).</summary>
    public const double Headroom = 1e-4;

    /// <summary>
    /// The bound B of the remarks, in float64, from one host read: the 2L squared norms ‖Ā_l‖², ‖D_l‖² (each in its
    /// statistics' dtype: one reduction per tensor, <see cref="AddNorm"/>) and the output's sum are stacked and read
    /// together, and B is formed on the host. A non-finite <paramref name="output"/> or squared norm makes it NaN or +∞.
    /// </summary>
    public static double StatisticsBound(IReadOnlyList<LayerStatistics> statistics, Tensor? output = null)
    {
        if (statistics.Count == 0 && output is null) return 0;
        using var scope = NewDisposeScope();
        var reductions = new List<Tensor>(2 * statistics.Count + 1);
        var squared = new List<bool>(2 * statistics.Count);
        // Per layer ‖Ā‖² and ‖D‖²: a value computed on the host, or (NaN, k) for the k-th reduction read below.
        var terms = new (double Host, int At)[2 * statistics.Count];
        for (int i = 0; i < statistics.Count; i++)
        {
            // One-hot rows (an index layer): ‖ā‖² = m · T is known without a reduction.
            terms[2 * i] = statistics[i].Tokens is { } tokens ? (tokens.numel(), -1)
                : SquaredNorm(reductions, squared, statistics[i].KeptRows is { } rows ? rows.Activations : statistics[i].Activations);
            terms[2 * i + 1] = SquaredNorm(reductions, squared, statistics[i].KeptRows is { } kept ? kept.OutputGradients : statistics[i].OutputGradients);
        }
        double outputSum = 0;
        int outputAt = -1;
        if (output is not null)
        {
            if (!HostSums.TrySum(output, out outputSum))
            {
                using var _ = no_grad();
                reductions.Add(output.sum());
                outputAt = reductions.Count - 1;
            }
        }
        var values = reductions.Count > 0 ? HostRead.Doubles(StackForRead(reductions)) : Array.Empty<double>();
        double Term(int k) => terms[k].At < 0 ? terms[k].Host : Squared(values, squared, terms[k].At);
        double bound = 0;
        for (int i = 0; i < statistics.Count; i++)
        {
            double a = Term(2 * i), d = Term(2 * i + 1);
            bound += Math.Max(statistics[i].Weight, 1.0) * a * d + a + d;
        }
        if (output is not null) bound += (outputAt < 0 ? outputSum : values[outputAt]) * 0.0;   // NaN or ±∞ in the output → NaN
        return bound;
    }

    /// <summary>
    /// ‖x‖² on the host for a small contiguous CPU float32 or float64 tensor (<see cref="HostSums"/>: below
    /// <see cref="HostSums.MaxEntries"/> entries one operator call costs more than the sum), else through
    /// <see cref="AddNorm"/> as a reduction to read with the others.
    /// </summary>
    private static (double Host, int At) SquaredNorm(List<Tensor> reductions, List<bool> squared, Tensor x)
    {
        if (HostSums.TrySquaredNorm(x, out double value)) return (value, -1);
        AddNorm(reductions, squared, x);
        return (double.NaN, reductions.Count - 1);
    }

    /// <summary>
    /// Adds ‖x‖² (<paramref name="squared"/> true) or ‖x‖ to <paramref name="reductions"/>, in x's dtype: for float32 and
    /// float64 tensors of at least <see cref="DotMinimum"/> entries a dot product of x with itself (BLAS, about half the
    /// time of the norm reduction, which runs serially: the bench's `perf --part kernels`, statistics guard), else the norm (one kernel
    /// where the dot takes two: what counts for the small layers of the figure-5 nets). A squared norm that overflows the
    /// dtype (+∞) does so only where B exceeds <see cref="Headroom"/> · max(dtype) anyway, so the decision is the norm's.
    /// </summary>
    private static void AddNorm(List<Tensor> reductions, List<bool> squared, Tensor x)
    {
        bool dot = x.dtype is ScalarType.Float32 or ScalarType.Float64 && x.numel() >= DotMinimum;
        if (dot)
        {
            var flat = x.reshape(-1);
            reductions.Add(flat.dot(flat));
        }
        else
        {
            reductions.Add(x.norm());
        }
        squared.Add(dot);
    }

    /// <summary>Entries from which <see cref="AddNorm"/> takes a dot product (ATen's grain size: below it the norm runs serially anyway).</summary>
    private const long DotMinimum = 32768;

    private static double Squared(double[] values, List<bool> squared, int k) => squared[k] ? values[k] : values[k] * values[k];

    /// <summary>
    /// Scalar tensors stacked into one float32 or float64 vector for <see cref="HostRead.Doubles"/>, which widens float32
    /// to float64 on the host: one stack when they share the dtype float32 or float64 (no conversion); one stack and one
    /// conversion to float64 when they share another dtype; each converted to float64 first when their dtypes differ.
    /// For reading several reductions with one host read.
    /// </summary>
    internal static Tensor StackForRead(IReadOnlyList<Tensor> scalars)
    {
        var dtype = scalars[0].dtype;
        bool common = true;
        for (int i = 1; i < scalars.Count && common; i++) common = scalars[i].dtype == dtype;
        if (!common) return stack(scalars.Select(t => t.InDtype(ScalarType.Float64)).ToArray());
        var stacked = stack(scalars);
        return dtype is ScalarType.Float32 or ScalarType.Float64 ? stacked : stacked.to_type(ScalarType.Float64);
    }

    /// <summary>
    /// True when the statistics may enter the curvature: B finite and ≤ <see cref="Headroom"/> · max(dtype).
    /// One host sync.
    /// </summary>
    public static bool StatisticsAreSafe(IReadOnlyList<LayerStatistics> statistics, Tensor? output = null)
    {
        if (statistics.Count == 0) return true;
        double bound = StatisticsBound(statistics, output);
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
