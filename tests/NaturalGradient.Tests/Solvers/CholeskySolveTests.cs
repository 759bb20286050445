using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="CholeskySolve.Apply"/>: (L Lᵀ)⁻¹ B by two triangular solves equals the dense solve of the system L was
/// factored from (float64, LU through <c>linalg.solve</c>), for one matrix and a batch, one and several right-hand sides, a
/// broadcast right-hand side, and whatever the factor's upper triangle holds.
/// </summary>
[Collection("Torch")]
public class CholeskySolveTests
{
    /// <summary>b SPD matrices n × n, w K + λI with K = (ĀĀᵀ) ∘ (DDᵀ) as TENGraD forms it, float64.</summary>
    internal static Tensor Systems(long b, long n, int seed)
    {
        manual_seed(seed);
        var a = randn(b, n, 5, dtype: ScalarType.Float64);
        var d = randn(b, n, 4, dtype: ScalarType.Float64);
        var k = a.bmm(a.mT).mul_(d.bmm(d.mT)).mul_(1.0 / n);
        k.diagonal(0, -2, -1).add_(0.01);
        return k;
    }

    [Theory]
    [InlineData(1, 7, 1)]
    [InlineData(3, 16, 1)]
    [InlineData(4, 9, 3)]
    public void Apply_EqualsTheDenseSolve(long b, long n, long k)
    {
        using var scope = NewDisposeScope();
        var systems = Systems(b, n, (int)(b * 100 + n));
        var rhs = randn(b, n, k, dtype: ScalarType.Float64);
        var x = CholeskySolve.Apply(linalg.cholesky(systems), rhs);
        var expected = linalg.solve(systems, rhs);
        Assert.Equal(new[] { b, n, k }, x.shape);
        Assert.True((x - expected).abs().max().item<double>() <= 1e-10 * expected.abs().max().item<double>());
        // One matrix without a batch dimension.
        var single = CholeskySolve.Apply(linalg.cholesky(systems[0]), rhs[0]);
        Assert.True((single - expected[0]).abs().max().item<double>() <= 1e-10 * expected.abs().max().item<double>());
    }

    [Fact]
    public void Apply_BroadcastRightHandSide_AndUpperTriangleIgnored()
    {
        using var scope = NewDisposeScope();
        var systems = Systems(3, 12, 5);
        var lower = linalg.cholesky(systems);
        var column = full(1, 12, 1, 0.25, dtype: ScalarType.Float64).expand(3, 12, 1);   // c·1, as the batched solve passes it
        var expected = linalg.solve(systems, column.contiguous());
        // Entries above the diagonal are not read: a factor carrying garbage there gives the same solution bit for bit.
        var dirty = lower.clone().add_(triu(full(3, 12, 12, 1e3, dtype: ScalarType.Float64), 1));
        var x = CholeskySolve.Apply(lower, column);
        Assert.True((x - expected).abs().max().item<double>() <= 1e-10 * expected.abs().max().item<double>());
        Assert.Equal(0.0, (CholeskySolve.Apply(dirty, column) - x).abs().max().item<double>());
    }
}
