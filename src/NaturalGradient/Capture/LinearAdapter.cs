using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>y = W a + b. One position per example (T = 1): ∇_W̄ ℓᵢ = δᵢ āᵢᵀ.</summary>
public sealed class LinearAdapter : LayerAdapterBase
{
    public LinearAdapter(string name, Linear module) : base(name, module, module.weight!, module.bias) { }

    public override string KindName => "Linear";
    public override bool IsDense => true;

    /// <remarks>Inputs with extra leading dimensions (m × … × in) are not supported: they would need T &gt; 1.</remarks>
    public override Tensor Activations(Tensor input)
    {
        if (input.dim() != 2)
            throw new NotSupportedException(
                $"layer '{Name}' (Linear) received a {input.dim()}-D input; NaturalGradient supports Linear layers on m × features inputs only");
        return WithBiasColumn(input).unsqueeze(1);
    }

    public override Tensor OutputGradients(Tensor gradOutput) => gradOutput.unsqueeze(1);
}
