using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>
/// <see cref="SymmetricEigh"/>: power-of-two widths decomposed one row and column wider give the eigenpairs of the matrix
/// itself — eigenvalues equal to <c>linalg.eigh</c>'s, eigenvectors orthonormal, reconstructing the matrix and spanning the
/// same eigenspaces, in eigh's column-major layout — for semi-definite factors of every scale, rank-deficient and zero ones;
/// a matrix far from semi-definite falls back to eigh of the matrix itself.
/// </summary>
[Collection("Torch")]
public class SymmetricEighTests
{
    [Theory]
    [InlineData(256L, true)]
    [InlineData(512L, true)]
    [InlineData(1024L, true)]
    [InlineData(128L, false)]
    [InlineData(255L, false)]
    [InlineData(257L, false)]
    [InlineData(785L, false)]
    public void Pads_PowersOfTwoFrom256(long n, bool pads) => Assert.Equal(pads, SymmetricEigh.Pads(n));

    /// <summary>Ā ᵀĀ/m of m random rows (rank min(m, n)), scaled.</summary>
    private static Tensor Factor(long n, long rows, double scale, ScalarType dtype, int seed)
    {
        var generator = new Generator((ulong)seed);
        var x = randn(rows, n, dtype: ScalarType.Float64, generator: generator);
        return x.t().mm(x).div_(rows).mul_(scale).to_type(dtype);
    }

    [Theory]
    [InlineData(256L, 300L, 1.0, ScalarType.Float64)]
    [InlineData(256L, 100L, 1.0, ScalarType.Float64)]      // rank 100: 156 zero eigenvalues
    [InlineData(512L, 600L, 1e-8, ScalarType.Float64)]     // small scale: c follows the factor's scale
    [InlineData(256L, 300L, 1e6, ScalarType.Float64)]
    [InlineData(512L, 600L, 1.0, ScalarType.Float32)]
    [InlineData(256L, 64L, 1.0, ScalarType.Float32)]
    public void PaddedPairs_AreTheMatrixsOwn(long n, long rows, double scale, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var a = Factor(n, rows, scale, dtype, seed: (int)(n + rows));
        long before = SymmetricEigh.PaddedDecompositions;
        var (values, vectors) = SymmetricEigh.Of(a);
        Assert.True(SymmetricEigh.PaddedDecompositions > before);
        var (refValues, refVectors) = linalg.eigh(a);
        double tolerance = dtype == ScalarType.Float64 ? 1e-11 : 2e-5;
        double norm = linalg.matrix_norm(a.to_type(ScalarType.Float64), ord: 2).item<double>();

        Assert.Equal(new[] { n }, values.shape);
        Assert.Equal(new[] { n, n }, vectors.shape);
        Assert.Equal(refVectors.stride(), vectors.stride());
        // Eigenvalues: those of eigh of A, ascending, to the solver's accuracy relative to ‖A‖₂.
        var v64 = values.to_type(ScalarType.Float64);
        Assert.True((v64 - refValues.to_type(ScalarType.Float64)).abs().max().item<double>() <= tolerance * norm);
        Assert.True((v64.narrow(0, 1, n - 1) - v64.narrow(0, 0, n - 1)).min().item<double>() >= 0);
        // Eigenvectors: orthonormal, Q diag(e) Qᵀ = A.
        var q = vectors.to_type(ScalarType.Float64);
        Assert.True((q.t().mm(q) - eye(n, dtype: ScalarType.Float64)).abs().max().item<double>() <= 10 * tolerance);
        var rebuilt = q.mul(v64.unsqueeze(0)).mm(q.t());
        Assert.True((rebuilt - a.to_type(ScalarType.Float64)).abs().max().item<double>() <= 10 * tolerance * norm);
        // The same eigenspaces: for each pair, A q = e q.
        var residual = a.to_type(ScalarType.Float64).mm(q) - q.mul(v64.unsqueeze(0));
        Assert.True(residual.abs().max().item<double>() <= 10 * tolerance * norm);
    }

    [Fact]
    public void ZeroMatrix_GivesZeroValuesAndAnOrthonormalBasis()
    {
        using var scope = NewDisposeScope();
        long before = SymmetricEigh.PaddedDecompositions;
        var (values, vectors) = SymmetricEigh.Of(zeros(256, 256, dtype: ScalarType.Float64));
        Assert.True(SymmetricEigh.PaddedDecompositions > before);
        Assert.Equal(0.0, values.abs().max().item<double>());
        Assert.True((vectors.t().mm(vectors) - eye(256, dtype: ScalarType.Float64)).abs().max().item<double>() < 1e-12);
    }

    /// <summary>
    /// A matrix with eigenvalues far below zero (−5 … 1, trace/n ≈ −2) puts c, clamped to −1e-30, above part of its
    /// spectrum: the padded pair is not first, and A is decomposed as it is — the same result as eigh of A.
    /// </summary>
    [Fact]
    public void IndefiniteMatrix_FallsBackToEighOfTheMatrix()
    {
        using var scope = NewDisposeScope();
        long n = 256;
        var (basis, _) = linalg.qr(randn(n, n, dtype: ScalarType.Float64, generator: new Generator(7)));
        var spectrum = linspace(-5, 1, n, dtype: ScalarType.Float64);
        var a = basis.mul(spectrum.unsqueeze(0)).mm(basis.t());
        a = (a + a.t()).mul_(0.5);
        var (values, vectors) = SymmetricEigh.Of(a);
        var (refValues, refVectors) = linalg.eigh(a);
        Assert.Equal(0.0, (values - refValues).abs().max().item<double>());
        Assert.Equal(0.0, (vectors - refVectors).abs().max().item<double>());
    }

    /// <summary>The K-FAC/EKFAC factor decomposition goes through it: a 512-wide float32 factor's eigenpairs reconstruct it.</summary>
    [Fact]
    public void KroneckerFactorDecomposition_TakesThePaddedPath()
    {
        using var scope = NewDisposeScope();
        var a = Factor(512, 700, 1.0, ScalarType.Float32, seed: 3);
        long before = SymmetricEigh.PaddedDecompositions;
        var (values, vectors) = KroneckerEigenbasis.Decompose(a);
        Assert.True(SymmetricEigh.PaddedDecompositions > before);
        var (padValues, padVectors) = SymmetricEigh.Of(a);
        Assert.Equal(0.0, (values - padValues.clamp_min(0)).abs().max().ToDouble());
        Assert.Equal(0.0, (vectors - padVectors).abs().max().ToDouble());
    }

    /// <summary>For a semi-definite matrix the unchecked path (<c>semiDefinite: true</c>) gives the checked one's result bit for bit.</summary>
    [Theory]
    [InlineData(ScalarType.Float64)]
    [InlineData(ScalarType.Float32)]
    public void SemiDefinite_WithoutTheCheck_GivesTheSameResult(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var a = Factor(256, 40, 1.0, dtype, seed: 11);
        var (values, vectors) = SymmetricEigh.Of(a);
        var (unchecked_, uncheckedVectors) = SymmetricEigh.Of(a, semiDefinite: true);
        Assert.Equal(0.0, (values - unchecked_).abs().max().ToDouble());
        Assert.Equal(0.0, (vectors - uncheckedVectors).abs().max().ToDouble());
    }

    /// <summary>
    /// TENGraD's eigh split (<c>TengradSolve</c>, the solve its block falls back to where the push-through solve would
    /// lose accuracy) on a batch of 256, whose Gram K = (ĀĀᵀ) ∘ (DDᵀ) is decomposed one wider without the order check,
    /// equals the dense solve (w JᵀJ + λI)⁻¹ g with J's rows the per-example gradients vec(δᵢāᵢᵀ) (float64; K has rank
    /// ≤ p = 15, so 241 of its eigenvalues are 0), with and without centring.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TengradSplit_OnABatchOf256_EqualsTheDenseSolve(bool centered)
    {
        using var scope = NewDisposeScope();
        const int n = 256;
        const double weight = 1.0 / n, damping = 1e-3;
        var a = randn(n, 5, dtype: ScalarType.Float64, generator: new Generator(21));
        var d = randn(n, 3, dtype: ScalarType.Float64, generator: new Generator(22));
        var g = randn(3, 5, dtype: ScalarType.Float64, generator: new Generator(23));
        var j = (d.unsqueeze(2) * a.unsqueeze(1)).reshape(n, 15);                // rows vec(δᵢ āᵢᵀ)
        if (centered) j = j - j.mean(new long[] { 0 }, keepdim: true);
        var gram = centered ? j.mm(j.t()) : a.mm(a.t()) * d.mm(d.t());
        long before = SymmetricEigh.PaddedDecompositions;
        var delta = NaturalGradient.Curvature.Blocks.TengradSolve.Solve(a, d, gram, centered, weight, damping, g);
        Assert.True(SymmetricEigh.PaddedDecompositions > before, "the Gram was not decomposed one wider");
        var metric = j.t().mm(j).mul_(weight) + eye(15, dtype: ScalarType.Float64).mul_(damping);
        var expected = linalg.solve(metric, g.reshape(15)).reshape(3, 5);
        double error = (delta - expected).norm().ToDouble() / expected.norm().ToDouble();
        Assert.True(error < 1e-9, $"relative difference {error:E2} from the dense solve");
    }
}
