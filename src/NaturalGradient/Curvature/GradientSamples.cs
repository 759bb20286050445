using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature;

/// <summary>The explicit per-sample gradient matrix J (n × p) of one layer, for the dense methods.</summary>
public static class GradientSamples
{
    /// <summary>
    /// J with rows gᵢₛ = vec(∇W̄ ℓ) (row-major), and the metric weight w, so that M = w JᵀJ.
    /// With <see cref="MetricForm.Centered"/> the rows are centred first (TONGA, seed 001 eq 12).
    /// </summary>
    public static Tensor Jacobian(LayerStatistics stats, MetricForm form)
    {
        var j = stats.PerSampleGradients().reshape(stats.SampleCount, -1);
        return form == MetricForm.Centered ? j - j.mean(new long[] { 0 }, keepdim: true) : j;
    }
}
