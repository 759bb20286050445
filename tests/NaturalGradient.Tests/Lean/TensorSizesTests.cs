using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Lean;

/// <summary><c>Sizes()</c>, the library's shape read by <c>dim()</c> and <c>size(i)</c>, is TorchSharp's <c>shape</c>.</summary>
[Collection("Torch")]
public class TensorSizesTests
{
    [Theory]
    [InlineData(new long[0])]
    [InlineData(new long[] { 0 })]
    [InlineData(new long[] { 7 })]
    [InlineData(new long[] { 3, 0, 2 })]
    [InlineData(new long[] { 2, 3, 4, 5 })]
    public void Sizes_EqualShape(long[] shape)
    {
        using var scope = NewDisposeScope();
        var t = zeros(shape);
        Assert.Equal(t.shape, t.Sizes());
        var view = t.dim() >= 2 ? t.transpose(0, 1) : t;
        Assert.Equal(view.shape, view.Sizes());
    }
}
