using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// 2-D convolution seen as a Linear layer applied to input patches (Grosse &amp; Martens 2016): ā are the
/// unfolded patches (T = output pixels), W̄ = [weight.reshape(out, c·kh·kw) b].
/// </summary>
/// <remarks>Zero padding only (explicit, <c>Padding.Valid</c>, or <c>Padding.Same</c> when it pads both sides alike) and
/// groups = 1. Other convolutions throw <see cref="NotSupportedException"/>, which <see cref="LayerCapture"/> turns into
/// "plain gradient" with this reason in the coverage report.</remarks>
public sealed class Conv2dAdapter : LayerAdapterBase
{
    private readonly Conv2d _conv;
    private readonly (long H, long W) _padding;

    public Conv2dAdapter(string name, Conv2d module) : base(name, module, module.weight!, module.bias)
    {
        if (module.groups != 1)
            throw new NotSupportedException($"layer '{name}' (Conv2d) has groups = {module.groups}; only groups = 1 is supported");
        if (module.padding_mode != PaddingModes.Zeros)
            throw new NotSupportedException($"layer '{name}' (Conv2d) uses '{module.padding_mode}' padding; only zero padding is supported");
        _conv = module;
        _padding = ZeroPadding(name, module);
        Numerics.OneDnnIsaCap.ForConvolutions();   // libtorch's Conv2d input gradient on AMD AVX-512 (the class's remarks)
    }

    /// <summary>
    /// The zero padding per side as unfold takes it: the explicit padding, none for <c>Padding.Valid</c>, and for
    /// <c>Padding.Same</c> (stride 1) half of dilation · (kernel − 1), which must be even: libtorch pads an odd total
    /// one more on the far side, and unfold pads both sides alike.
    /// </summary>
    private static (long, long) ZeroPadding(string name, Conv2d m)
    {
        if (m.padding is { } p) return (p[0], p[1]);
        if (m.padding_type == Padding.Valid) return (0, 0);
        long h = m.dilation[0] * (m.kernel_size[0] - 1), w = m.dilation[1] * (m.kernel_size[1] - 1);
        if (h % 2 != 0 || w % 2 != 0)
            throw new NotSupportedException(
                $"layer '{name}' (Conv2d) uses 'Same' padding with an even kernel extent ({m.kernel_size[0]}×{m.kernel_size[1]}), which pads one side more; " +
                "only padding both sides alike is supported (an odd kernel, or explicit padding)");
        return (h / 2, w / 2);
    }

    public override string KindName => "Conv2d";

    public override Tensor Activations(Tensor input)
    {
        BatchSize(input, 4);
        var k = _conv.kernel_size;
        var patches = nn.functional.unfold(input, (k[0], k[1]),
            dilation: (_conv.dilation[0], _conv.dilation[1]),
            padding: (_padding.H, _padding.W),
            stride: (_conv.stride[0], _conv.stride[1]));          // m × (c·kh·kw) × T
        return Assemble(patches.transpose(1, 2));                    // m × T × in'
    }

    public override Tensor OutputGradients(Tensor gradOutput) =>
        gradOutput.flatten(2).transpose(1, 2);                       // m × T × out
}
