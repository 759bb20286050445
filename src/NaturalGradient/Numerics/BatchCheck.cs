using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// Checks of a batch's tensors made before any work starts, so that a misused entry point answers with one line
/// naming the tensor and what is wrong, rather than with libtorch's message from deep inside a step (whose advice
/// about non-finite values would mislead). Only tensor metadata is read (dtype, device, shape, requires_grad): no
/// host sync, no kernel.
/// </summary>
internal static class BatchCheck
{
    /// <summary>
    /// A model input <paramref name="x"/> (named <paramref name="name"/>) for a model whose trainable tensors include
    /// <paramref name="parameter"/>: not null, at least one example, on the parameter's device, and — when floating
    /// point — of the parameter's dtype (integer inputs, such as token indices, are the model's business).
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">An empty batch, another device or another floating-point dtype.</exception>
    public static void Input(Tensor? x, string name, Tensor parameter)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.Sizes() is [] or [0, ..])
            throw new ArgumentException($"{name} holds no example (shape {ShapeText.Of(x)}); a batch needs at least one row", name);
        SameDevice(x, name, parameter, "the model");
        if (x.is_floating_point() && parameter.is_floating_point() && x.dtype != parameter.dtype)
            throw new ArgumentException(
                $"{name} is {x.dtype} but the model's parameters are {parameter.dtype}: convert the batch ({name}.to_type(ScalarType.{parameter.dtype})) " +
                $"or the model (model.to(ScalarType.{x.dtype}))", name);
    }

    /// <summary>
    /// A target <paramref name="target"/> (named <paramref name="name"/>) for tensors on <paramref name="reference"/>'s
    /// device: not null and on that device (its shape and dtype are the likelihood's to check).
    /// </summary>
    public static void Target(Tensor? target, string name, Tensor reference, string referenceName)
    {
        ArgumentNullException.ThrowIfNull(target, name);
        SameDevice(target, name, reference, referenceName);
    }

    /// <summary>
    /// A model output handed to a backward pass: not null, at least one example, and part of an autograd graph
    /// (a forward under <c>no_grad()</c> or a detached output has none, and the statistics need one).
    /// </summary>
    public static void Output(Tensor? output, string name)
    {
        ArgumentNullException.ThrowIfNull(output, name);
        if (output.Sizes() is [] or [0, ..])
            throw new ArgumentException($"{name} holds no example (shape {ShapeText.Of(output)}); a batch needs at least one row", name);
        if (!output.requires_grad)
            throw new ArgumentException(
                $"{name} does not require grad: it was computed under no_grad() or detached, so it has no graph to take gradients " +
                "and the Fisher statistics from; pass the output of model.call(x) itself, with gradients enabled", name);
    }

    private static void SameDevice(Tensor t, string name, Tensor reference, string referenceName)
    {
        if (t.device_type != reference.device_type || t.device_index != reference.device_index)
            throw new ArgumentException($"{name} is on {t.device} but {referenceName} is on {reference.device}: move {name} to {reference.device}", name);
    }
}
