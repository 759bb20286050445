using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="RowGram"/> and <see cref="RowTransposeProduct"/> against the explicit float64 Jacobian: J with rows
/// vec(dᵢ āᵢᵀ) built by <c>einsum</c>, K = J Jᵀ and Jᵀu by float64 GEMMs. Entrywise error bounds come from the same
/// products of absolute values (|J| |J|ᵀ, |J|ᵀ|u|) times a small multiple of the dtype's ε: orders below, at and
/// above the SIMD width, one output, transposed views, and refused inputs with their messages.
/// </summary>
[Collection("Torch")]
public class RowKernelTests
{
    private static Tensor ExplicitJ(Tensor d, Tensor a) =>
        einsum("io,ic->ioc", d.to_type(ScalarType.Float64), a.to_type(ScalarType.Float64)).reshape(d.size(0), -1);

    private static double Epsilon(ScalarType dtype) => dtype == ScalarType.Float32 ? 1.1920929e-7 : 2.220446049250313e-16;

    private static void AssertWithin(Tensor actual, Tensor expected, Tensor scale, double tolerance, string label)
    {
        var excess = (actual.to_type(ScalarType.Float64) - expected).abs() - scale * tolerance;
        Assert.True(excess.max().item<double>() <= 0, $"{label}: largest error over the bound {excess.max().item<double>()}");
    }

    [Theory]
    [InlineData(1, 1, 1, ScalarType.Float32)]
    [InlineData(7, 3, 5, ScalarType.Float32)]
    [InlineData(37, 4, 9, ScalarType.Float64)]
    [InlineData(128, 17, 20, ScalarType.Float32)]
    [InlineData(128, 21, 1, ScalarType.Float32)]
    [InlineData(128, 21, 20, ScalarType.Float64)]
    [InlineData(100, 33, 20, ScalarType.Float32)]
    public void Gram_EqualsTheExplicitJacobiansGram(long n, long inputs, long outputs, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        manual_seed(n + 3 * inputs + 7 * outputs);
        var a = randn(n, inputs, dtype: dtype);
        var d = randn(n, outputs, dtype: dtype);
        Assert.True(RowGram.Applies(a, d));
        var gram = RowGram.Form(a, d);
        Assert.Equal(new[] { n, n }, gram.shape);
        Assert.Equal(dtype, gram.dtype);
        var j = ExplicitJ(d, a);
        var scale = j.abs().mm(j.abs().t());
        AssertWithin(gram, j.mm(j.t()), scale, 4 * (inputs + outputs) * Epsilon(dtype), "K");
        Assert.Equal(0, (gram - gram.t()).abs().max().to_type(ScalarType.Float64).item<double>(), 0);   // both triangles, the same values
    }

    [Fact]
    public void Gram_ReadsTransposedViews()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var a = randn(9, 40, dtype: ScalarType.Float32).t();    // 40 × 9, not contiguous
        var d = randn(3, 40, dtype: ScalarType.Float32).t();
        var j = ExplicitJ(d, a);
        AssertWithin(RowGram.Form(a, d), j.mm(j.t()), j.abs().mm(j.abs().t()), 48 * Epsilon(ScalarType.Float32), "K");
    }

    [Theory]
    [InlineData(1, 1, 1, ScalarType.Float32)]
    [InlineData(7, 3, 5, ScalarType.Float64)]
    [InlineData(37, 4, 9, ScalarType.Float32)]
    [InlineData(128, 17, 20, ScalarType.Float32)]
    [InlineData(128, 21, 1, ScalarType.Float64)]
    [InlineData(100, 21, 20, ScalarType.Float32)]
    public void TransposeProduct_EqualsTheExplicitJacobiansProduct(long n, long inputs, long outputs, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        manual_seed(2 * n + inputs + 5 * outputs);
        var a = randn(n, inputs, dtype: dtype);
        var d = randn(n, outputs, dtype: dtype);
        var u = randn(n, dtype: ScalarType.Float64);
        var uHost = u.data<double>().ToArray();
        Assert.True(RowTransposeProduct.Applies(d, a));
        var (delta, squares) = RowTransposeProduct.Multiply(d, a, uHost);
        Assert.Equal(new[] { outputs, inputs }, delta.shape);
        Assert.Equal(dtype, delta.dtype);
        var j = ExplicitJ(d, a);
        var uRounded = u.to_type(dtype).to_type(ScalarType.Float64);   // the kernel rounds u to the rows' dtype, as the tensor form does
        var expected = j.t().mv(uRounded).reshape(outputs, inputs);
        var scale = j.abs().t().mv(uRounded.abs()).reshape(outputs, inputs);
        AssertWithin(delta, expected, scale, 4 * n * Epsilon(dtype), "Δ");
        double norm = delta.to_type(ScalarType.Float64).norm().item<double>();
        Assert.Equal(norm * norm, squares, 1e-12 * norm * norm);   // ‖Δ‖² of the returned entries
    }

    [Fact]
    public void TransposeProduct_ReadsTransposedViews()
    {
        using var scope = NewDisposeScope();
        manual_seed(8);
        var a = randn(6, 30, dtype: ScalarType.Float64).t();
        var d = randn(4, 30, dtype: ScalarType.Float64).t();
        var u = randn(30, dtype: ScalarType.Float64);
        var (delta, _) = RowTransposeProduct.Multiply(d, a, u.data<double>().ToArray());
        var j = ExplicitJ(d, a);
        AssertWithin(delta, j.t().mv(u).reshape(4, 6), j.abs().t().mv(u.abs()).reshape(4, 6), 120 * Epsilon(ScalarType.Float64), "Δ");
    }

    [Fact]
    public void OtherInputs_AreRefused()
    {
        using var scope = NewDisposeScope();
        var a = randn(16, 5);
        var d = randn(16, 3);
        Assert.False(RowGram.Applies(a, d.to_type(ScalarType.Float64)));                  // two dtypes
        Assert.False(RowGram.Applies(a.to_type(ScalarType.Float16), d.to_type(ScalarType.Float16)));
        Assert.False(RowGram.Applies(a, randn(15, 3)));                                    // two n
        Assert.False(RowGram.Applies(a.unsqueeze(0), d));                                  // 3-D
        Assert.False(RowGram.Applies(randn(256, 16), randn(256, 1)));                      // 256² · 17 > 2²⁰
        Assert.True(RowGram.Applies(randn(256, 14), randn(256, 1)));                       // 256² · 15 ≤ 2²⁰
        var gramError = Assert.Throws<ArgumentException>(() => RowGram.Form(a, randn(15, 3)));
        Assert.Equal("the row Gram takes n × in' and n × out CPU rows of one dtype, float32 or float64, with n² (in' + out) ≤ 1048576, not [16, 5] Float32 and [15, 3] Float32", gramError.Message);

        Assert.False(RowTransposeProduct.Applies(d, a.to_type(ScalarType.Float64)));
        Assert.False(RowTransposeProduct.Applies(randn(512, 16), randn(512, 17)));         // 512 · 16 · 17 > 2¹⁷
        var productError = Assert.Throws<ArgumentException>(() => RowTransposeProduct.Multiply(d, a, new double[15]));
        Assert.Equal("u has 15 entries for 16 rows (Parameter 'u')", productError.Message);
        var refusal = Assert.Throws<ArgumentException>(() => RowTransposeProduct.Multiply(d.to_type(ScalarType.Float64), a, new double[16]));
        Assert.Equal("the row transpose product takes n × out and n × in' CPU rows of one dtype, float32 or float64, with n · out · in' ≤ 131072, not [16, 3] Float64 and [16, 5] Float32", refusal.Message);
    }
}
