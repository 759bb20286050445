using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>
/// How NaturalGradient sees one kind of layer: its parameters as one matrix W̄ = [W b] (out × in', the bias
/// as an extra input column), its captured inputs as activations ā and its output gradients as δ.
/// </summary>
/// <remarks>
/// For a layer applied at T positions (T = 1 for Linear, T = output pixels for Conv2d) the per-example gradient
/// is ∇_W̄ ℓᵢ = Σₜ δᵢₜ āᵢₜᵀ (shared/notes/curvature-conventions.md). Implement this interface and register the
/// module type in <see cref="LayerRegistry"/> to support a new layer kind.
/// </remarks>
public interface ILayerAdapter
{
    /// <summary>Dotted module path inside the model, e.g. "encoder.fc1".</summary>
    string Name { get; }

    /// <summary>Layer kind shown to users, e.g. "Linear".</summary>
    string KindName { get; }

    Module Module { get; }

    bool HasBias { get; }

    /// <summary>Columns of W̄ (inputs, plus one for the bias if present).</summary>
    long InputDim { get; }

    /// <summary>Rows of W̄ (output features or channels).</summary>
    long OutputDim { get; }

    /// <summary>Number of parameters covered: OutputDim × InputDim.</summary>
    long ParameterCount => InputDim * OutputDim;

    /// <summary>True when every position shares one rank-one per-example gradient (T = 1).</summary>
    bool IsDense { get; }

    /// <summary>The module's parameters that W̄ covers (weight, then bias).</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>ā from the captured layer input: m × T × InputDim, with a column of ones for the bias.</summary>
    Tensor Activations(Tensor input);

    /// <summary>Output gradients arranged as m × T × OutputDim.</summary>
    Tensor OutputGradients(Tensor gradOutput);

    /// <summary>The current .grad of the parameters as W̄'s gradient (OutputDim × InputDim); zeros where .grad is undefined.</summary>
    Tensor GradientMatrix();

    /// <summary>Overwrites the parameters' .grad with the matrix <paramref name="g"/> (OutputDim × InputDim).</summary>
    void WriteGradientMatrix(Tensor g);

    /// <summary>The current parameter values as W̄ (OutputDim × InputDim), detached.</summary>
    Tensor WeightMatrix();

    /// <summary>Adds the W̄-shaped <paramref name="update"/> to the parameters in place (under no_grad).</summary>
    void AddToWeights(Tensor update);
}
