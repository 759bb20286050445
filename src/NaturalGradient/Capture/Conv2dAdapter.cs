using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// 2-D convolution seen as a Linear layer applied to input patches (Grosse &amp; Martens 2016): ā are the
/// unfolded patches (T = output pixels), W̄ = [weight.reshape(out, c·kh·kw) b].
/// </summary>
public sealed class Conv2dAdapter : LayerAdapterBase
{
    private readonly Conv2d _conv;

    public Conv2dAdapter(string name, Conv2d module) : base(name, module, module.weight!, module.bias)
    {
        if (module.groups != 1)
            throw new NotSupportedException($"layer '{name}' (Conv2d) has groups = {module.groups}; only groups = 1 is supported");
        if (module.padding is null || module.padding_mode != PaddingModes.Zeros)
            throw new NotSupportedException($"layer '{name}' (Conv2d) uses '{module.padding_type?.ToString() ?? module.padding_mode.ToString()}' padding; only explicit zero padding is supported");
        _conv = module;
    }

    public override string KindName => "Conv2d";

    public override Tensor Activations(Tensor input)
    {
        BatchSize(input, 4);
        var k = _conv.kernel_size;
        var patches = nn.functional.unfold(input, (k[0], k[1]),
            dilation: (_conv.dilation[0], _conv.dilation[1]),
            padding: (_conv.padding![0], _conv.padding[1]),
            stride: (_conv.stride[0], _conv.stride[1]));          // m × (c·kh·kw) × T
        return Assemble(patches.transpose(1, 2));                    // m × T × in'
    }

    public override Tensor OutputGradients(Tensor gradOutput) =>
        gradOutput.flatten(2).transpose(1, 2);                       // m × T × out
}
