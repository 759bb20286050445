using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>Argument checks shared by the Kronecker-factored blocks (one place for shapes, steps and damping).</summary>
internal static class KroneckerBlockGuard
{
    public static void Statistics(ILayerAdapter layer, LayerStatistics statistics, long step)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, $"step must be ≥ 0, got {step}");
        if (statistics.InputWidth != layer.InputDim || statistics.OutputWidth != layer.OutputDim)
            throw new ArgumentException(
                $"statistics for layer '{layer.Name}' have in' = {statistics.InputWidth}, out = {statistics.OutputWidth}; " +
                $"the block expects in' = {layer.InputDim}, out = {layer.OutputDim}", nameof(statistics));
        if (statistics.Tokens is null && statistics.ActivationShape is { } a)
        {
            if (a[^3] != statistics.BatchSize || a[^2] != statistics.Positions)
                throw new ArgumentException("output gradients (s × m × T × out) do not match the activations (m × T × in')", nameof(statistics));
        }
    }

    public static void Matrix(ILayerAdapter layer, Tensor v, string name)
    {
        ArgumentNullException.ThrowIfNull(v, name);
        if (v.dim() != 2 || v.size(0) != layer.OutputDim || v.size(1) != layer.InputDim)
            throw new ArgumentException(
                $"{name} for layer '{layer.Name}' must be W̄-shaped {layer.OutputDim} × {layer.InputDim}, got [{string.Join(", ", v.Sizes())}]", name);
    }

    public static void Factors(ILayerAdapter layer, Tensor a, Tensor g)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(g);
        var shapeA = DiagonalActivation.Shape(layer);
        if (!a.Sizes().SequenceEqual(shapeA) || g.dim() != 2 || g.size(0) != layer.OutputDim || g.size(1) != layer.OutputDim)
            throw new ArgumentException(
                $"factors for layer '{layer.Name}' must be A: {string.Join(" × ", shapeA)} and G: {layer.OutputDim} × {layer.OutputDim}, " +
                $"got [{string.Join(", ", a.Sizes())}] and [{string.Join(", ", g.Sizes())}]");
    }

    public static void Damping(double damping)
    {
        if (!(damping > 0) || double.IsInfinity(damping))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, $"damping must be a finite number > 0, got {damping}");
    }
}
