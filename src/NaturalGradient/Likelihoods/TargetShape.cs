using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Likelihoods;

/// <summary>
/// The targets given to a likelihood do not have the layout its output needs (shape or element type). The message
/// names both shapes and the layout expected, on one line.
/// </summary>
public sealed class TargetShapeException : ArgumentException
{
    public TargetShapeException(string message) : base(message) { }
}

/// <summary>
/// Checks targets against the network output before any loss is computed, so that a target vector of length m
/// against an m × 1 output is refused instead of broadcast to an m × m loss.
/// </summary>
internal static class TargetShape
{
    /// <summary>Formats a shape as [8, 1].</summary>
    public static string Format(Tensor t) => Numerics.ShapeText.Of(t);

    /// <summary>The output must be m × o (a batch of o-dimensional outputs).</summary>
    public static void RequireOutput(string likelihood, Tensor output)
    {
        if (output.dim() != 2)
            throw new TargetShapeException(
                $"{likelihood} likelihood: the output must be m × o (batch × outputs), got shape {Format(output)}");
    }

    /// <summary>Gaussian and Bernoulli: the target has exactly the output's shape m × o.</summary>
    public static void RequireSame(string likelihood, Tensor output, Tensor target)
    {
        RequireOutput(likelihood, output);
        if (target.Sizes() is [var rows, var columns] && output.Sizes() is [var m, var o] && rows == m && columns == o) return;
        string hint = target.dim() == 1 && target.size(0) == output.size(0) && output.size(1) == 1
            ? $" (reshape it with target.reshape({output.size(0)}, 1))"
            : "";
        throw new TargetShapeException(
            $"{likelihood} likelihood: target shape {Format(target)} does not match output shape {Format(output)}; " +
            $"targets must have the output's shape{hint}");
    }

    /// <summary>Categorical: the target is a vector of m integer class indices.</summary>
    public static void RequireClassIndices(Tensor output, Tensor target)
    {
        RequireOutput("Categorical", output);
        bool integer = target.dtype is ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte;
        if (target.dim() == 1 && target.size(0) == output.size(0) && integer) return;
        string what = target.dim() == 1 && target.size(0) == output.size(0)
            ? $"target has element type {target.dtype}"
            : $"target shape {Format(target)} does not fit output shape {Format(output)}";
        throw new TargetShapeException(
            $"Categorical likelihood: {what}; targets must be {output.size(0)} integer class indices in [0, {output.size(1)}) (shape [{output.size(0)}], int64)");
    }

    /// <summary>
    /// Runs a cross-entropy whose class-index check happens in libtorch, turning its out-of-range error into a
    /// one-line <see cref="TargetShapeException"/> (no host sync is spent on checking the range beforehand).
    /// </summary>
    public static Tensor ClassIndexed(Tensor output, Func<Tensor> crossEntropy)
    {
        try
        {
            return crossEntropy();
        }
        catch (System.Runtime.InteropServices.ExternalException e) when (e.Message.Contains("out of bounds", StringComparison.Ordinal))
        {
            throw new TargetShapeException(
                $"Categorical likelihood: a class index is outside [0, {output.size(1)}) for output shape {Format(output)} " +
                $"({NativeMessage.FirstLine(e)}); use labels 0 … {output.size(1) - 1} or a wider output layer");
        }
    }
}
