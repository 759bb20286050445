using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="RankOneParameterSystem"/> against the explicit float64 computation: J with rows vec(dᵢ āᵢᵀ) built by
/// <c>einsum</c>, M = w JᵀJ and ḡ = w Jᵀ1 by GEMMs, (M + λI)⁻¹ B by LAPACK's <c>linalg.solve</c>; float32 and float64
/// rows, a transposed view, an indefinite system and refused inputs.
/// </summary>
[Collection("Torch")]
public class RankOneParameterSystemTests
{
    private static double MaxAbs(Tensor t) => t.abs().max().item<double>();

    private static Tensor ExplicitJ(Tensor d, Tensor a) =>
        einsum("io,ic->ioc", d.to_type(ScalarType.Float64), a.to_type(ScalarType.Float64)).reshape(d.size(0), -1);

    [Theory]
    [InlineData(1, 1, 1, ScalarType.Float64)]
    [InlineData(128, 1, 21, ScalarType.Float64)]
    [InlineData(128, 1, 21, ScalarType.Float32)]
    [InlineData(37, 3, 7, ScalarType.Float32)]
    [InlineData(64, 4, 9, ScalarType.Float64)]
    public void Form_EqualsTheExplicitProducts(long n, long outputs, long inputs, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        manual_seed(n + outputs * 10 + inputs);
        var d = randn(n, outputs, dtype: dtype);
        var a = randn(n, inputs, dtype: dtype);
        const double w = 1.0 / 3;
        Assert.True(RankOneParameterSystem.Applies(d, a));
        var (matrix, mean) = RankOneParameterSystem.Form(d, a, w);

        var j = ExplicitJ(d, a);   // the float32 rows' values, exactly, in float64
        var expected = j.t().mm(j).mul(w);
        long p = outputs * inputs;
        Assert.Equal(new[] { p, p }, matrix.shape);
        Assert.Equal(ScalarType.Float64, matrix.dtype);
        Assert.True(MaxAbs(matrix - expected) <= 1e-13 * MaxAbs(expected), $"M: {MaxAbs(matrix - expected)}");
        Assert.Equal(0, MaxAbs(matrix - matrix.t()), 0);   // symmetric to the last bit
        var g = j.sum(new long[] { 0 }).mul(w);
        Assert.True(MaxAbs(mean - g) <= 1e-13 * MaxAbs(g), $"ḡ: {MaxAbs(mean - g)}");
    }

    [Fact]
    public void Form_ReadsATransposedView()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        var d = randn(2, 50, dtype: ScalarType.Float32).t();   // 50 × 2, not contiguous
        var a = randn(50, 6, dtype: ScalarType.Float32);
        var (matrix, mean) = RankOneParameterSystem.Form(d, a, 0.02);
        var j = ExplicitJ(d, a);
        TensorAssert.Close(j.t().mm(j).mul(0.02), matrix, rtol: 1e-13, label: "M");
        TensorAssert.Close(j.sum(new long[] { 0 }).mul(0.02), mean, rtol: 1e-13, label: "ḡ");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(21, 1)]
    [InlineData(21, 3)]
    [InlineData(256, 2)]
    public void Solve_EqualsLapack(long p, long k)
    {
        using var scope = NewDisposeScope();
        manual_seed(p + k);
        var j = randn(p / 2 + 1, p, dtype: ScalarType.Float64);   // rank-deficient M for p > 2, as a head's can be
        var m = j.t().mm(j).div(j.size(0));
        m = (m + m.t()).mul_(0.5);
        var b = randn(p, k, dtype: ScalarType.Float64);
        var (mBefore, bBefore) = (m.clone(), b.clone());
        const double damping = 1e-2;
        var x = RankOneParameterSystem.Solve(m, damping, b);
        Assert.True(m.eq(mBefore).all().item<bool>() && b.eq(bBefore).all().item<bool>(), "the inputs are not written");
        Assert.NotNull(x);
        Assert.Equal(new[] { p, k }, x!.shape);
        var expected = linalg.solve(m + damping * eye(p, dtype: ScalarType.Float64), b);
        Assert.True(MaxAbs(x - expected) <= 1e-9 * MaxAbs(expected), $"X: {MaxAbs(x - expected)}");
    }

    [Fact]
    public void Solve_OfAnIndefiniteOrNonFiniteSystem_IsNull()
    {
        using var scope = NewDisposeScope();
        var indefinite = diag(tensor(new[] { 1.0, -2.0, 3.0 }));
        Assert.Null(RankOneParameterSystem.Solve(indefinite, 0.5, ones(3, 1, dtype: ScalarType.Float64)));
        var nan = eye(3, dtype: ScalarType.Float64);
        nan[0, 0] = tensor(double.NaN);
        Assert.Null(RankOneParameterSystem.Solve(nan, 0.5, ones(3, 1, dtype: ScalarType.Float64)));
    }

    [Fact]
    public void Applies_RefusesLargeOrForeignInputs_AndFormSaysWhy()
    {
        using var scope = NewDisposeScope();
        var d = ones(128, 1);
        Assert.True(RankOneParameterSystem.Applies(d, ones(128, 90)));          // 128 · 90² ≤ 2²⁰
        Assert.False(RankOneParameterSystem.Applies(d, ones(128, 91)));         // 128 · 91² > 2²⁰
        Assert.False(RankOneParameterSystem.Applies(ones(2, 2), ones(2, 129))); // p = 258 > 256
        Assert.False(RankOneParameterSystem.Applies(ones(3, 1), ones(2, 4)));   // rows differ
        Assert.False(RankOneParameterSystem.Applies(ones(3, 1, dtype: ScalarType.Float16), ones(3, 4)));
        var e = Assert.Throws<ArgumentException>(() => RankOneParameterSystem.Form(ones(3, 1), ones(2, 4), 1));
        Assert.Equal("the parameter-space system takes n × out and n × in' float32 or float64 CPU rows with out · in' ≤ 256 and n (out · in')² ≤ 1048576, not [3, 1] Float32 and [2, 4] Float32", e.Message);
        Assert.Throws<ArgumentException>(() => RankOneParameterSystem.Solve(ones(3, 3), 0.1, ones(3, 1, dtype: ScalarType.Float64)));
        Assert.Throws<ArgumentException>(() => RankOneParameterSystem.Solve(eye(3, dtype: ScalarType.Float64), 0.1, ones(2, 1, dtype: ScalarType.Float64)));
    }
}
