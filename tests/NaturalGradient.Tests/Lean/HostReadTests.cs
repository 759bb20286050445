using NaturalGradient.Numerics;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Lean;

/// <summary>The step's host reads and graph cuts: the values TorchSharp's accessor gives, without its set-up.</summary>
[Collection("Torch")]
public class HostReadTests
{
    [Fact]
    public void Doubles_EqualTheAccessorsValues_ContiguousOrNot()
    {
        using var scope = NewDisposeScope();
        var t = arange(6, dtype: ScalarType.Float64).reshape(2, 3).mul(1.5);
        Assert.Equal(t.data<double>().ToArray(), HostRead.Doubles(t));
        var transposed = t.t();
        Assert.False(transposed.is_contiguous());
        Assert.Equal(new[] { 0, 4.5, 1.5, 6, 3, 7.5 }, HostRead.Doubles(transposed));
        Assert.Empty(HostRead.Doubles(zeros(0, dtype: ScalarType.Float64)));
    }

    [Fact]
    public void Doubles_RefusesOtherDtypes()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => HostRead.Doubles(ones(2)));
        Assert.StartsWith("expected a float64 tensor, got Float32", e.Message);
    }

    /// <summary>The loss and Σ of every entry, against sums formed here in float64; an infinite entry makes the sum infinite.</summary>
    [Fact]
    public void ReadWithFiniteSum_GivesTheScalarAndTheSumOfAllEntries()
    {
        using var scope = NewDisposeScope();
        var a = tensor(new float[] { 1.5f, -2f, 3e38f });
        var b = tensor(new float[] { 3e38f, 0.25f });
        var (value, sum) = NaturalGradientPreconditioner.ReadWithFiniteSum(tensor(0.75f), new[] { a, b });
        Assert.Equal(0.75, value);
        Assert.Equal(1.5 - 2 + (double)3e38f + (double)3e38f + 0.25, sum, 1e-6 * 6e38);
        var (_, bad) = NaturalGradientPreconditioner.ReadWithFiniteSum(tensor(0.75f), new[] { a, tensor(new[] { float.PositiveInfinity }) });
        Assert.Equal(double.PositiveInfinity, bad);
        var (_, mixed) = NaturalGradientPreconditioner.ReadWithFiniteSum(tensor(1.0), new[] { tensor(new float[] { 2f }), tensor(new[] { 0.5 }) });
        Assert.Equal(2.5, mixed);
    }

    [Fact]
    public void NoGraph_DetachesOnlyWhatRequiresGrad()
    {
        using var scope = NewDisposeScope();
        var plain = ones(3);
        Assert.Same(plain, plain.NoGraph());
        var leaf = ones(3, requires_grad: true);
        var cut = leaf.NoGraph();
        Assert.NotSame(leaf, cut);
        Assert.False(cut.requires_grad);
    }
}
