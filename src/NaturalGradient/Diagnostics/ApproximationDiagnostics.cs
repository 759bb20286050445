using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Diagnostics;

/// <summary>How far one layer's approximate block is from the exact one on a probe batch.</summary>
/// <param name="Layer">Dotted layer name.</param>
/// <param name="Parameters">p_l = out · in'.</param>
/// <param name="RelativeFrobeniusError">‖B_l − M_l‖_F / ‖M_l‖_F, B_l the method's block, M_l = w J_lᵀJ_l the exact block (NaN if skipped).</param>
/// <param name="DirectionCosine">cos∠(Δ_approx, Δ_exact) with Δ_approx the method's damped solve and Δ_exact = (M_l + λI)⁻¹ g_l (NaN if skipped).</param>
public sealed record LayerApproximation(string Layer, long Parameters, double RelativeFrobeniusError, double DirectionCosine)
{
    /// <summary>False when the layer was too large for the dense reference, or the method has no per-layer block.</summary>
    public bool Measured => !double.IsNaN(RelativeFrobeniusError);
}

/// <summary>
/// Approximation diagnostics: per layer, the relative Frobenius error of an approximate metric block (K-FAC, EKFAC,
/// K-BFGS, diagonal, TENGraD, …) against the exact block M_l = w Σₙ gₙgₙᵀ of the same statistics (seed 000 eq 38), and
/// the cosine between the approximate and the exact damped natural-gradient directions of the layer's gradient.
/// </summary>
/// <remarks>
/// The exact block is dense (p_l × p_l, O(n p_l² + p_l³)): layers with more than <c>maxBlockParameters</c> parameters
/// are reported as not measured. Methods without per-layer blocks (exact, Hessian-free) are not measured either.
/// </remarks>
public static class ApproximationDiagnostics
{
    /// <summary>Default largest layer (parameters) for which the dense exact block is formed.</summary>
    public const long DefaultMaxBlockParameters = 4096;

    /// <summary>The per-layer blocks of a block-diagonal curvature (null when it has none).</summary>
    public static Func<string, ICurvatureBlock?>? Blocks(ICurvature curvature) => curvature switch
    {
        BlockDiagonalCurvature b => name => Try(() => b.Block(name)),
        KbfgsCurvature k => name => Try(() => k.Block(name)),
        AutoCurvature a => name => Try(() => a.Block(name)),
        _ => null,
    };

    private static ICurvatureBlock? Try(Func<ICurvatureBlock> get)
    {
        try { return get(); }
        catch (KeyNotFoundException) { return null; }
    }

    /// <summary>Measures every layer of <paramref name="probe"/>.</summary>
    /// <param name="blocks">The method's block per layer name (from <see cref="Blocks"/>); null = nothing measurable.</param>
    /// <param name="probe">Statistics of the probe batch (the metric the method approximates).</param>
    /// <param name="gradients">The layers' W̄-shaped gradients on the probe batch, in the order of <paramref name="probe"/>.</param>
    /// <param name="damping">λ &gt; 0 of both solves.</param>
    /// <param name="form">Uncentred Fisher or centred covariance for the exact block.</param>
    /// <param name="maxBlockParameters">Layers above this size are skipped.</param>
    public static IReadOnlyList<LayerApproximation> Measure(Func<string, ICurvatureBlock?>? blocks, IReadOnlyList<LayerStatistics> probe,
        IReadOnlyList<Tensor> gradients, double damping, MetricForm form = MetricForm.Uncentered, long maxBlockParameters = DefaultMaxBlockParameters)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(gradients);
        if (gradients.Count != probe.Count)
            throw new ArgumentException($"{gradients.Count} gradients for {probe.Count} layers", nameof(gradients));
        if (!(damping > 0) || double.IsInfinity(damping))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, "damping must be a finite number > 0");
        var rows = new List<LayerApproximation>(probe.Count);
        using var _ = no_grad();
        for (int l = 0; l < probe.Count; l++)
        {
            var stats = probe[l];
            string name = stats.Adapter.Name;
            long p = stats.Adapter.ParameterCount;
            var block = blocks?.Invoke(name);
            if (block is null || p > maxBlockParameters)
            {
                rows.Add(new LayerApproximation(name, p, double.NaN, double.NaN));
                continue;
            }
            using var scope = NewDisposeScope();
            using var exactBlock = new DenseBlock(form);
            exactBlock.Update(stats, 0);
            var exact = exactBlock.ToDense().to_type(ScalarType.Float64);
            var approx = block.ToDense().to_type(ScalarType.Float64);
            double error = (approx - exact).norm().ToDouble() / Math.Max(exact.norm().ToDouble(), double.Epsilon);
            var g = gradients[l].detach().to_type(ScalarType.Float64);
            var exactDirection = SafeCholesky.Solve(exact + damping * eye(p, dtype: ScalarType.Float64), g.flatten());
            var approxDirection = block.Precondition(gradients[l].detach(), damping).to_type(ScalarType.Float64).flatten();
            double cosine = Cosine(approxDirection, exactDirection);
            rows.Add(new LayerApproximation(name, p, error, cosine));
        }
        return rows;
    }

    /// <summary>⟨a, b⟩ / (‖a‖ ‖b‖); NaN when either is zero.</summary>
    public static double Cosine(Tensor a, Tensor b)
    {
        double na = a.norm().ToDouble(), nb = b.norm().ToDouble();
        return na > 0 && nb > 0 ? a.dot(b).ToDouble() / (na * nb) : double.NaN;
    }

    /// <summary>The mean gradient (1/m) Σᵢ ∇W̄ ℓᵢ from empirical-Fisher statistics (s = 1, w = 1/m): W̄-shaped.</summary>
    public static Tensor MeanGradient(LayerStatistics empirical) =>
        empirical.PerSampleGradients().sum(dim: 0).mul(empirical.Weight);
}
