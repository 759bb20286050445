using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// y = W a + b on m × d inputs (T = 1) or on m × T₁ × … × d inputs (sequences, T = T₁ ⋯): every leading dimension
/// after the first is a position, and ∇_W̄ ℓᵢ = Σₜ δᵢₜ āᵢₜᵀ sums over them (docs/LAYERS.md).
/// </summary>
public sealed class LinearAdapter : LayerAdapterBase
{
    public LinearAdapter(string name, Linear module) : base(name, module, module.weight!, module.bias) { }

    public override string KindName => "Linear";

    public override Tensor Activations(Tensor input)
    {
        var shape = InputShape(input, 2);
        return Assemble(input.reshape(shape[0], -1, shape[^1]));
    }

    public override Tensor OutputGradients(Tensor gradOutput)
    {
        var shape = gradOutput.Sizes();
        return gradOutput.reshape(shape[0], -1, shape[^1]);
    }
}
