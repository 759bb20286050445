using NaturalGradient.Numerics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// Reading and writing a layer's covered parameters (.grad and values) as its W̄ matrix, through the adapter's
/// <see cref="ILayerAdapter.SplitMatrix"/> and <see cref="ILayerAdapter.JoinMatrix"/>.
/// </summary>
internal static class ParameterMatrix
{
    /// <summary>The current .grad of the covered parameters as W̄ (zeros where .grad is undefined).</summary>
    public static Tensor Gradient(ILayerAdapter layer)
    {
        using var _ = no_grad();
        // Each read of .grad is a native call and a new handle: read it once per parameter.
        return layer.JoinMatrix(layer.Parameters.Select(p => p.grad is { } g ? g : zeros_like(p)).ToList());
    }

    /// <summary>Overwrites the covered parameters' .grad with the W̄-shaped <paramref name="g"/>.</summary>
    public static void WriteGradient(ILayerAdapter layer, Tensor g)
    {
        using var _ = no_grad();
        var parts = layer.SplitMatrix(g);
        for (int i = 0; i < layer.Parameters.Count; i++) SetGrad(layer.Parameters[i], parts[i].InDtype(layer.Parameters[i].dtype));
    }

    private static void SetGrad(Parameter p, Tensor value)
    {
        if (p.grad is { } grad)
            grad.copy_(value);
        else
            p.grad = value.contiguous().clone().DetachFromDisposeScope();
    }

    /// <summary>Adds α · the W̄-shaped <paramref name="update"/> to the covered parameters in place (under no_grad).</summary>
    public static void AddToWeights(ILayerAdapter layer, Tensor update, double alpha = 1)
    {
        using var _ = no_grad();
        var parts = layer.SplitMatrix(update);
        for (int i = 0; i < layer.Parameters.Count; i++) layer.Parameters[i].add_(parts[i].InDtype(layer.Parameters[i].dtype), alpha: alpha);
    }

    /// <summary>The covered parameters' current values as W̄, detached.</summary>
    public static Tensor Weights(ILayerAdapter layer)
    {
        using var _ = no_grad();
        return layer.JoinMatrix(layer.Parameters.Select(p => p.detach()).ToList());
    }
}
