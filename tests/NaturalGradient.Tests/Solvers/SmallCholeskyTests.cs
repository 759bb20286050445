using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="SmallCholesky.Factor"/> against LAPACK's factor (<c>linalg.cholesky</c>) and against the matrix it factors
/// (L Lᵀ = A), float64, for orders on either side of the SIMD width and of the four-row blocks, batches of any shape,
/// an input whose lower triangle holds garbage (the upper one is read, as LAPACK's uplo = 'U'), and matrices that are not positive definite (LAPACK's info).
/// </summary>
[Collection("Torch")]
public class SmallCholeskyTests
{
    private static Tensor Systems(long b, long n, int seed) => CholeskySolveTests.Systems(b, n, seed);

    private static double MaxAbs(Tensor t) => t.abs().max().item<double>();

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 3)]
    [InlineData(3, 4)]
    [InlineData(2, 5)]
    [InlineData(2, 8)]
    [InlineData(2, 9)]
    [InlineData(2, 14)]
    [InlineData(2, 15)]
    [InlineData(3, 37)]
    [InlineData(2, 128)]
    [InlineData(1, 203)]
    [InlineData(1, 256)]
    public void Factor_EqualsLapack_AndReproducesTheMatrix(long b, long n)
    {
        using var scope = NewDisposeScope();
        var systems = Systems(b, n, (int)(b * 1000 + n));
        var (factor, info) = SmallCholesky.Factor(systems);
        Assert.Equal(new[] { b, n, n }, factor.shape);
        Assert.Equal(ScalarType.Int32, info.dtype);
        Assert.Equal(new[] { b }, info.shape);
        Assert.Equal(0, MaxAbs(info.to_type(ScalarType.Float64)), 0);
        double scale = MaxAbs(systems);
        Assert.True(MaxAbs(factor - linalg.cholesky(systems)) <= 1e-12 * Math.Sqrt(scale) * n);
        Assert.True(MaxAbs(factor.bmm(factor.mT) - systems) <= 1e-13 * scale * n);
        Assert.Equal(0, MaxAbs(factor.triu(1)), 0);
        Assert.Equal(0, MaxAbs(systems - Systems(b, n, (int)(b * 1000 + n))), 0);   // the input is not changed
    }

    [Fact]
    public void Factor_ReadsOnlyTheUpperTriangle_AndKeepsBatchShapes()
    {
        using var scope = NewDisposeScope();
        var systems = Systems(6, 19, 7).reshape(2, 3, 19, 19);
        var lowerGarbage = systems.triu() + full_like(systems, 1e30).tril(-1);   // the lower triangle is not read
        var (factor, info) = SmallCholesky.Factor(lowerGarbage);
        Assert.Equal(new long[] { 2, 3 }, info.shape);
        Assert.Equal(new long[] { 2, 3, 19, 19 }, factor.shape);
        Assert.Equal(0, MaxAbs(info.to_type(ScalarType.Float64)), 0);
        Assert.True(MaxAbs(factor - linalg.cholesky(systems)) <= 1e-12 * Math.Sqrt(MaxAbs(systems)) * 19);
        // A transposed (non-contiguous) view: the same factor, A being symmetric.
        var (fromView, _) = SmallCholesky.Factor(systems.mT);
        Assert.True(MaxAbs(fromView - linalg.cholesky(systems)) <= 1e-12 * Math.Sqrt(MaxAbs(systems)) * 19);
    }

    [Fact]
    public void Factor_Overwriting_FactorsTheInputsOwnStorage()
    {
        using var scope = NewDisposeScope();
        var systems = Systems(3, 41, 11);
        var scratch = systems.clone();
        var (factor, info) = SmallCholesky.Factor(scratch, overwrite: true);
        Assert.Equal(0, MaxAbs(info.to_type(ScalarType.Float64)), 0);
        Assert.True(MaxAbs(factor - linalg.cholesky(systems)) <= 1e-12 * Math.Sqrt(MaxAbs(systems)) * 41);
        Assert.Equal(0, MaxAbs(scratch - factor.mT), 0);   // the input now holds Lᵀ by rows: no copy was made

        // A view that is not contiguous, or a dtype that goes to LAPACK: a fresh factor, the input unchanged.
        var view = systems.clone().mT;
        var (fromView, _) = SmallCholesky.Factor(view, overwrite: true);
        Assert.Equal(0, MaxAbs(view - systems), 0);
        Assert.True(MaxAbs(fromView - linalg.cholesky(systems)) <= 1e-12 * Math.Sqrt(MaxAbs(systems)) * 41);
        var single = systems.to_type(ScalarType.Float32);
        SmallCholesky.Factor(single, overwrite: true);
        Assert.Equal(0, MaxAbs((single - systems.to_type(ScalarType.Float32)).to_type(ScalarType.Float64)), 0);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    [InlineData(17)]
    public void Factor_NotPositiveDefinite_GivesLapacksInfo(int failing)
    {
        using var scope = NewDisposeScope();
        // A = diag(1, …, 1, −1, 1, …) with the negative pivot at 1-based order `failing`, rotated by a lower-triangular
        // change of basis so that the failure shows only after the rows before it: A = M D Mᵀ, M unit lower triangular.
        long n = 24;
        manual_seed(failing);
        var m = randn(n, n, dtype: ScalarType.Float64).tril(-1).mul_(0.3) + eye(n, dtype: ScalarType.Float64);
        var d = ones(n, dtype: ScalarType.Float64);
        d[failing - 1] = -1.0;
        var a = m.mm(diag(d)).mm(m.T);
        var good = Systems(1, n, 3)[0];
        var (_, info) = SmallCholesky.Factor(stack(new[] { good, a }));
        var (_, lapackInfo) = linalg.cholesky_ex(a);
        Assert.Equal(0, info[0].item<int>());
        Assert.Equal(failing, info[1].item<int>());
        Assert.Equal(lapackInfo.item<int>(), info[1].item<int>());
    }

    [Fact]
    public void Factor_NaN_IsReportedAsAFailure()
    {
        using var scope = NewDisposeScope();
        var a = Systems(1, 12, 5);
        a[0, 3, 7] = double.NaN;
        var (_, info) = SmallCholesky.Factor(a);
        Assert.Equal(8, info[0].item<int>());   // U_37 is NaN, so row 7's pivot is: the 8th leading minor fails
    }

    [Fact]
    public void Factor_OtherInputs_GoToLapack()
    {
        using var scope = NewDisposeScope();
        var single = Systems(2, 10, 9).to_type(ScalarType.Float32);
        var (factor, info) = SmallCholesky.Factor(single);
        Assert.Equal(ScalarType.Float32, factor.dtype);
        Assert.Equal(0, MaxAbs((factor - linalg.cholesky(single)).to_type(ScalarType.Float64)), 0);
        Assert.Equal(new long[] { 2 }, info.shape);
        var large = Systems(1, SmallCholesky.MaxOrder + 1, 2);
        var (largeFactor, _) = SmallCholesky.Factor(large);
        Assert.Equal(0, MaxAbs(largeFactor - linalg.cholesky(large)), 0);
    }
}
