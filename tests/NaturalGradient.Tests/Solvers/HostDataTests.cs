using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary><see cref="HostData"/>: the pointer is the first element of the tensor (storage offset included), writes
/// through it reach the tensor, and other dtypes or layouts are refused.</summary>
[Collection("Torch")]
public class HostDataTests
{
    [Fact]
    public unsafe void Pointer_IsTheFirstElement_OfAView()
    {
        using var scope = NewDisposeScope();
        var a = arange(12, dtype: ScalarType.Float64).reshape(3, 4);
        double* p = HostData.Doubles(a.narrow(0, 1, 2));
        Assert.Equal(4.0, p[0]);
        Assert.Equal(11.0, p[7]);
        p[1] = -1;
        Assert.Equal(-1.0, a[1, 1].item<double>());
        var f = arange(6, dtype: ScalarType.Float32);
        Assert.Equal(2f, HostData.Floats(f.narrow(0, 2, 3))[0]);
    }

    [Fact]
    public void OtherDtypesAndLayouts_AreRefused()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => { unsafe { HostData.Doubles(ones(3)); } });
        Assert.StartsWith("expected a Float64 tensor, not Float32", e.Message);
        Assert.Throws<InvalidOperationException>(() => { unsafe { HostData.Doubles(ones(3, 4, dtype: ScalarType.Float64).t()); } });
    }
}
