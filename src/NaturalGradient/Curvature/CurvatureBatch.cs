using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature;

/// <summary>
/// Everything a curvature method may need from one step's metric batch: per-layer statistics (for the
/// structured methods) and, for matrix-free methods, the metric batch's network output with its graph alive.
/// </summary>
public sealed class CurvatureBatch
{
    public CurvatureBatch(IReadOnlyList<LayerStatistics> layers, ILikelihood likelihood, Tensor? output, long step)
    {
        Layers = layers;
        Likelihood = likelihood;
        Output = output;
        Step = step;
    }

    /// <summary>Per-layer statistics of the metric batch, in model order.</summary>
    public IReadOnlyList<LayerStatistics> Layers { get; }

    public ILikelihood Likelihood { get; }

    /// <summary>The metric batch's network output (m × o), graph retained; valid during the current step only.</summary>
    public Tensor? Output { get; }

    /// <summary>Optimisation step index, from 0.</summary>
    public long Step { get; }
}
