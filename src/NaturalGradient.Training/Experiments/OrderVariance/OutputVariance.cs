using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Experiments.OrderVariance;

/// <summary>The influence measure of seed 001 figure 3: variance of the model's outputs across runs.</summary>
public static class OutputVariance
{
    /// <summary>
    /// For outputs of R runs on the same held-out inputs (each H × C, e.g. class probabilities): the unbiased
    /// variance across runs of every output, averaged over held-out examples and outputs.
    /// </summary>
    public static double Of(IReadOnlyList<Tensor> outputs)
    {
        if (outputs.Count < 2) throw new ArgumentException("the variance across runs needs at least two runs", nameof(outputs));
        using var _ = NewDisposeScope();
        return stack(outputs.ToArray()).to_type(ScalarType.Float64).var(0, unbiased: true).mean().ToDouble();
    }
}
