using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="DampedGramSystems.Solve"/> against the systems formed explicitly in float64: u_k against LAPACK's
/// <c>linalg.solve</c> of w_k K_k + λ_k I, the factors against <c>linalg.cholesky</c>, the bound's sum and 1ᵀK u against
/// their definitions, for rank-deficient Grams K = J Jᵀ (as TENGraD's are when a layer has fewer parameters than
/// examples) in float32 and float64, a transposed view, and a Gram that is not finite.
/// </summary>
[Collection("Torch")]
public class DampedGramSystemsTests
{
    private static readonly double[] Weights = { 0.5, 1.0, 2.0 }, Dampings = { 1e-3, 0.1, 3.0 }, C = { 1.0 / 7, -0.25, 2.0 };

    /// <summary>b Grams K_k = J_k J_kᵀ, n × n, of rank min(n, 6) (J_k is n × 6), float64, exactly symmetric.</summary>
    private static Tensor Grams(long b, long n, int seed)
    {
        manual_seed(seed);
        var j = randn(b, n, 6, dtype: ScalarType.Float64);
        var k = j.bmm(j.mT);
        return (k + k.mT).mul_(0.5);   // symmetric to the last bit, as the test of a transposed view needs
    }

    private static double MaxAbs(Tensor t) => t.abs().max().item<double>();

    [Theory]
    [InlineData(1, ScalarType.Float64)]
    [InlineData(5, ScalarType.Float64)]
    [InlineData(37, ScalarType.Float64)]
    [InlineData(128, ScalarType.Float64)]
    [InlineData(5, ScalarType.Float32)]
    [InlineData(37, ScalarType.Float32)]
    [InlineData(128, ScalarType.Float32)]
    public void Solve_EqualsTheExplicitSystems(long n, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var grams = Grams(3, n, (int)n).to_type(dtype);
        var system = empty(3, n, n, dtype: ScalarType.Float64);
        var (info, hostU, weighted, onesKu) = DampedGramSystems.Solve(grams.unbind(0), Weights, Dampings, C, system);
        Assert.Equal(3, info.Length);
        Assert.Equal(3, weighted.Length);
        Assert.Equal(3, onesKu.Length);
        Assert.Equal(3 * n, hostU.Length);
        var u = tensor(hostU).reshape(3, n);

        var k64 = grams.to_type(ScalarType.Float64);   // the float32 Grams' values, exactly
        for (int k = 0; k < 3; k++)
        {
            var a = k64[k] * Weights[k] + Dampings[k] * eye(n, dtype: ScalarType.Float64);
            var expected = linalg.solve(a, full(n, C[k], dtype: ScalarType.Float64));
            Assert.Equal(0, info[k]);
            Assert.True(MaxAbs(u[k] - expected) <= 1e-10 * MaxAbs(expected), $"u_{k}: {MaxAbs(u[k] - expected)}");
            Assert.True(MaxAbs(system[k].mT - linalg.cholesky(a)) <= 1e-12 * Math.Sqrt(MaxAbs(a)) * n, $"factor {k}");
            Assert.Equal(0, MaxAbs(system[k].tril(-1)), 0);
            double bound = (u[k].abs() * k64[k].diagonal().clamp_min(0).sqrt()).sum().item<double>();
            Assert.Equal(bound, weighted[k], 1e-12 * bound);
            double ones = k64[k].sum(new long[] { 0 }).dot(u[k]).item<double>();
            Assert.Equal(ones, onesKu[k], 1e-10 * (Math.Abs(ones) + MaxAbs(k64[k].sum(new long[] { 0 })) * MaxAbs(u[k])));
        }
    }

    [Fact]
    public void Solve_ReadsATransposedViewAsTheGramItself()
    {
        using var scope = NewDisposeScope();
        var grams = Grams(3, 20, 4);
        var (_, fromRows, _, _) = DampedGramSystems.Solve(grams.unbind(0), Weights, Dampings, C, empty(3, 20, 20, dtype: ScalarType.Float64));
        var (_, fromView, _, _) = DampedGramSystems.Solve(grams.mT.unbind(0), Weights, Dampings, C, empty(3, 20, 20, dtype: ScalarType.Float64));
        Assert.True(MaxAbs(tensor(fromRows) - tensor(fromView)) <= 1e-13 * MaxAbs(tensor(fromRows)));
    }

    [Fact]
    public void NonFiniteGram_IsReportedByInfo_AndTheOthersAreSolved()
    {
        using var scope = NewDisposeScope();
        var grams = Grams(3, 12, 8);
        grams[1, 4, 9] = double.NaN;
        var (info, hostU, _, _) = DampedGramSystems.Solve(grams.unbind(0), Weights, Dampings, C, empty(3, 12, 12, dtype: ScalarType.Float64));
        var u = tensor(hostU).reshape(3, 12);
        Assert.Equal(new[] { 0, 10, 0 }, info);   // U_4,9 is NaN, so row 9's pivot is: the 10th leading minor fails
        Assert.Equal(0, MaxAbs(u[1]), 0);
        Assert.True(u[0].isfinite().all().item<bool>() && u[2].isfinite().all().item<bool>());
    }

    [Fact]
    public void OtherInputs_AreRefusedOrRejected()
    {
        using var scope = NewDisposeScope();
        var grams = Grams(2, 10, 1);
        Assert.True(DampedGramSystems.Applies(grams.unbind(0)));
        Assert.False(DampedGramSystems.Applies(Array.Empty<Tensor>()));
        Assert.False(DampedGramSystems.Applies(new[] { grams[0], Grams(1, 11, 2)[0] }));                 // two orders
        Assert.False(DampedGramSystems.Applies(Grams(1, SmallCholesky.MaxOrder + 1, 3).unbind(0)));       // too large
        Assert.False(DampedGramSystems.Applies(grams.to_type(ScalarType.Float16).unbind(0)));
        Assert.False(DampedGramSystems.Applies(new[] { grams }));                                         // not n × n
        var error = Assert.Throws<ArgumentException>(() =>
            DampedGramSystems.Solve(grams.unbind(0), new[] { 1.0, 1.0 }, new[] { 0.1, 0.1 }, new[] { 1.0, 1.0 }, empty(2, 10, 9, dtype: ScalarType.Float64)));
        Assert.StartsWith("the system buffer must be a contiguous 2 × 10 × 10 float64 CPU tensor, not [2, 10, 9] Float64", error.Message);
        Assert.Throws<ArgumentException>(() =>
            DampedGramSystems.Solve(grams.unbind(0), new[] { 1.0 }, new[] { 0.1, 0.1 }, new[] { 1.0, 1.0 }, empty(2, 10, 10, dtype: ScalarType.Float64)));
    }
}
