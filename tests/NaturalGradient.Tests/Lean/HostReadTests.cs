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

    /// <summary>float32 values widened on the host equal libtorch's float64 conversion of them, bit for bit (extremes included).</summary>
    [Fact]
    public void Doubles_OfFloat32_EqualTheFloat64Conversion()
    {
        using var scope = NewDisposeScope();
        var t = tensor(new[] { 0.1f, -3.4e38f, float.Epsilon, 1e-30f, float.PositiveInfinity, float.NaN, 7f });
        var expected = t.to_type(ScalarType.Float64).data<double>().ToArray();
        var read = HostRead.Doubles(t);
        Assert.Equal(expected.Select(BitConverter.DoubleToInt64Bits), read.Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(new[] { 1.0, 4.0, 2.0, 5.0 }, HostRead.Doubles(tensor(new[] { 1f, 2f, 4f, 5f }).reshape(2, 2).t()));
    }

    [Fact]
    public void Doubles_RefusesOtherDtypes()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => HostRead.Doubles(ones(2, dtype: ScalarType.BFloat16)));
        Assert.Equal("expected a float64 or float32 tensor, got BFloat16 (Parameter 'values')", e.Message);
        Assert.Throws<ArgumentException>(() => HostRead.Doubles(ones(2, dtype: ScalarType.Int32)));
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
        // Tensors above HostSums.MaxEntries (or strided) go through the stacked reductions, small ones are summed on the
        // host: both parts add up, and a NaN in either makes the sum NaN.
        var large = full(40000, 0.5f);
        var strided = full(2, 3, 1.0).t();
        var (loss, both) = NaturalGradientPreconditioner.ReadWithFiniteSum(tensor(2.0f), new[] { large, a, strided });
        Assert.Equal(2.0, loss);
        Assert.Equal(20000 + 1.5 - 2 + (double)3e38f + 6, both, 1e-6 * 3e38);
        large[123] = float.NaN;
        Assert.True(double.IsNaN(NaturalGradientPreconditioner.ReadWithFiniteSum(tensor(2.0f), new[] { large, a }).Sum));
        var small = tensor(new[] { 1.0, double.NaN });
        Assert.True(double.IsNaN(NaturalGradientPreconditioner.ReadWithFiniteSum(tensor(2.0f), new[] { full(40000, 0.5f), small }).Sum));
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
