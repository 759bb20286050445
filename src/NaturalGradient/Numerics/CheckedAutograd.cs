using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// torch.autograd.grad with its preconditions checked on the managed side. TorchSharp 0.107's native entry point
/// (THSAutograd_grad) does not catch libtorch's errors, so an output without a graph, an input that does not require
/// grad, an output gradient of another shape or (without allow_unused) an input the output does not depend on
/// terminates the process instead of throwing. The native call always runs with allow_unused (same gradients); an
/// unused input is refused afterwards unless the caller allows it. Managed shape and flag reads only: no kernel, no
/// host synchronisation.
/// </summary>
/// <remarks>Not checkable here: a graph already freed by an earlier backward pass without retain_graph (callers keep
/// their graphs with retain_graph).</remarks>
internal static class CheckedAutograd
{
    /// <summary>∂(Σ gradOutputs·outputs)/∂inputs, as torch.autograd.grad.</summary>
    /// <param name="outputs">Tensors to differentiate (each with an autograd graph).</param>
    /// <param name="inputs">Tensors to differentiate with respect to (each requires grad).</param>
    /// <param name="gradOutputs">One per output, of its shape (the vector of the vector-Jacobian product); null for scalars.</param>
    /// <param name="retainGraph">Keep the graph for further passes.</param>
    /// <param name="createGraph">Build the gradients' own graph (double backward).</param>
    /// <param name="allowUnused">Return an invalid tensor for an input the outputs do not depend on, instead of throwing.</param>
    /// <param name="inputNames">How messages name each input (e.g. "parameter 'fc1.weight'"); "input k" if null.</param>
    /// <returns>One gradient per input (an invalid tensor for an unused input when <paramref name="allowUnused"/>).</returns>
    /// <exception cref="ArgumentException">An output has no autograd graph, an input does not require grad, the output
    /// gradients do not match the outputs in number or shape, or an input is unused and <paramref name="allowUnused"/>
    /// is false; the message names the tensor and its shape.</exception>
    public static IList<Tensor> Grad(IList<Tensor> outputs, IList<Tensor> inputs, IList<Tensor>? gradOutputs = null,
        bool retainGraph = false, bool createGraph = false, bool allowUnused = false, IReadOnlyList<string>? inputNames = null)
    {
        string Name(int j) => inputNames is not null && j < inputNames.Count ? inputNames[j] : $"input {j}";
        for (int i = 0; i < outputs.Count; i++)
            if (!outputs[i].requires_grad)
                throw new ArgumentException($"gradient of an output with no autograd graph (output {i}, shape {ShapeText.Of(outputs[i].Sizes())}): compute it with gradients enabled from tensors that require grad");
        for (int j = 0; j < inputs.Count; j++)
            if (!inputs[j].requires_grad)
                throw new ArgumentException($"gradient with respect to {Name(j)} (shape {ShapeText.Of(inputs[j].Sizes())}), which does not require grad: pass only tensors with requires_grad = true");
        if (gradOutputs is not null)
        {
            if (gradOutputs.Count != outputs.Count)
                throw new ArgumentException($"{outputs.Count} outputs but {gradOutputs.Count} output gradients");
            for (int i = 0; i < outputs.Count; i++)
                if (!gradOutputs[i].Sizes().SequenceEqual(outputs[i].Sizes()))
                    throw new ArgumentException($"output gradient {i} has shape {ShapeText.Of(gradOutputs[i].Sizes())}, but output {i} has shape {ShapeText.Of(outputs[i].Sizes())}");
        }
        var grads = autograd.grad(outputs, inputs, gradOutputs, retainGraph, createGraph, allow_unused: true);
        if (!allowUnused)
            for (int j = 0; j < grads.Count; j++)
                if (grads[j] is null || grads[j].IsInvalid)
                    throw new ArgumentException($"gradient with respect to {Name(j)} (shape {ShapeText.Of(inputs[j].Sizes())}), which the output does not depend on: " +
                        "every parameter given must be used in computing the output (freeze an unused one with requires_grad = false)");
        return grads;
    }

}
