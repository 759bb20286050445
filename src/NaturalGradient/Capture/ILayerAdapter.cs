using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>
/// How NaturalGradient sees one kind of layer: its trainable parameters as one matrix W̄ (out × in'), its captured
/// inputs as activations ā (m × T × ·) and its output gradients as δ (m × T × out).
/// </summary>
/// <remarks>
/// <para>Kronecker layers (<see cref="IsKronecker"/>: Linear, Conv2d, Embedding): W̄ = [W b] with the bias as an extra
/// input column, and the per-example gradient is ∇_W̄ ℓᵢ = Σₜ δᵢₜ āᵢₜᵀ over the T positions at which the layer is applied
/// (T = 1 for Linear on m × d inputs; sequence positions; output pixels; and every call of a shared layer) —
/// shared/notes/curvature-conventions.md. Elementwise layers (LayerNorm, BatchNorm in eval mode) have
/// W̄ = [γ β] (features × 2) and per-example gradients Σₜ [δᵢₜ ∘ x̂ᵢₜ, δᵢₜ] (<see cref="PerSampleGradients"/>).</para>
/// <para>Coverage is per tensor: a parameter with requires_grad = false is not part of W̄ (its columns are left out),
/// never receives a .grad and never moves. <see cref="Parameters"/> lists the covered (trainable) tensors only.</para>
/// <para>Implement this interface (or derive from <see cref="LayerAdapterBase"/>) and register the module type in
/// <see cref="LayerRegistry"/> to support a new layer kind.</para>
/// </remarks>
public interface ILayerAdapter
{
    /// <summary>Dotted module path inside the model, e.g. "encoder.fc1".</summary>
    string Name { get; }

    /// <summary>Layer kind shown to users, e.g. "Linear".</summary>
    string KindName { get; }

    Module Module { get; }

    /// <summary>True when W̄ holds the (trainable) bias as its last column.</summary>
    bool HasBias { get; }

    /// <summary>True when W̄ holds the (trainable) weight; false when the weight is frozen and only the bias is covered.</summary>
    bool HasWeight { get; }

    /// <summary>Columns of W̄.</summary>
    long InputDim { get; }

    /// <summary>Rows of W̄ (output features or channels).</summary>
    long OutputDim { get; }

    /// <summary>Number of parameters covered: OutputDim × InputDim.</summary>
    long ParameterCount => InputDim * OutputDim;

    /// <summary>
    /// True when the per-example gradient is Σₜ δₜ āₜᵀ with ā of width <see cref="InputDim"/> (Kronecker-factored
    /// methods apply); false for elementwise layers, whose gradient comes from <see cref="PerSampleGradients"/> only.
    /// </summary>
    bool IsKronecker { get; }

    /// <summary>The covered (trainable) parameters, in the order W̄'s columns use them (weight, then bias).</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>ā from one recorded call's layer input: m × T × width (width = InputDim for Kronecker layers).</summary>
    Tensor Activations(Tensor input);

    /// <summary>One recorded call's output gradients arranged as m × T × OutputDim.</summary>
    Tensor OutputGradients(Tensor gradOutput);

    /// <summary>Per-sample gradients of W̄ from ā (n × T × width) and δ (n × T × out): n × out × in'.</summary>
    Tensor PerSampleGradients(Tensor activations, Tensor outputGradients);

    /// <summary>W̄-shaped matrix → one tensor per covered parameter, shaped like it (order of <see cref="Parameters"/>).</summary>
    IReadOnlyList<Tensor> SplitMatrix(Tensor matrix);

    /// <summary>One tensor per covered parameter (order of <see cref="Parameters"/>) → the W̄-shaped matrix.</summary>
    Tensor JoinMatrix(IReadOnlyList<Tensor> perParameter);

    /// <summary>The current .grad of the covered parameters as W̄'s gradient (OutputDim × InputDim); zeros where .grad is undefined.</summary>
    Tensor GradientMatrix();

    /// <summary>Overwrites the covered parameters' .grad with the matrix <paramref name="g"/> (OutputDim × InputDim).</summary>
    void WriteGradientMatrix(Tensor g);

    /// <summary>The current values of the covered parameters as W̄ (OutputDim × InputDim), detached.</summary>
    Tensor WeightMatrix();

    /// <summary>Adds α · the W̄-shaped <paramref name="update"/> to the covered parameters in place (under no_grad), one fused
    /// pass per parameter.</summary>
    void AddToWeights(Tensor update, double alpha = 1);
}

/// <summary>A Kronecker layer whose activations are one-hot rows (Embedding): its statistics can use the indices.</summary>
public interface ITokenLayerAdapter : ILayerAdapter
{
    /// <summary>The token indices of one recorded call, m × T (int64).</summary>
    Tensor Tokens(Tensor input);
}
