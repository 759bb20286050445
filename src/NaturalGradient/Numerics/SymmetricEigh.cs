using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// <c>linalg.eigh</c> of a symmetric positive semi-definite matrix (a Kronecker factor), with power-of-two widths of CPU
/// matrices decomposed one row and column wider: LAPACK's syevd (MKL, float32) took 19.7 ms at 512 against 16.7 ms at
/// 513 and 130 against 117 ms at 1024 and 1025 on one thread (11.9 against 10.4 and 70.5 against 62.5 ms on two; float64
/// 38.4 against 33.3 ms at 512 and 513; docs/PERFORMANCE.md, "Eigendecompositions at power-of-two widths"): a leading
/// dimension of a power of two costs 9–18 %. Other devices' solvers are left as they are.
/// </summary>
/// <remarks>
/// For n × n A with n a power of two ≥ <see cref="MinimumPaddedWidth"/>, the (n + 1) × (n + 1) matrix [[A, 0], [0, c]] with
/// c = −max(tr A / n, 1e-30) is decomposed. Its last row and column stay exactly [0 … 0 c] through the Householder
/// tridiagonalisation (every product with them multiplies an exact zero), so the tridiagonal matrix splits there, the
/// eigenvector of c is e_{n+1} and the others are A's eigenvectors with a trailing 0. For A positive semi-definite up to
/// rounding c lies below A's spectrum (tr A / n ≥ λ_max(A) / n, far above the rounding of λ_min), so it comes first in
/// eigh's ascending order and A's pairs are the remaining n, in the same order as eigh of A gives them. |c| ≤ ‖A‖₂ keeps the
/// solver's error scale that of A. Whether c came first is checked on the result (one host read, together with its
/// finiteness); if not — A far from semi-definite — A is decomposed as it is. A caller whose matrix is semi-definite by
/// construction (TENGraD's Gram, a Hadamard product of two Gram matrices) can leave the check out
/// (<c>semiDefinite: true</c>) and read nothing from the device.
/// </remarks>
internal static class SymmetricEigh
{
    /// <summary>The least power-of-two width decomposed one wider (256: 3.16 against 2.97 ms on one thread at 257).</summary>
    public const long MinimumPaddedWidth = 256;

    private static long _paddedDecompositions;

    /// <summary>Decompositions whose pairs came from the padded matrix, process-wide (tests: the padded path is taken).</summary>
    public static long PaddedDecompositions => Interlocked.Read(ref _paddedDecompositions);

    /// <summary>True for the widths <see cref="Of"/> decomposes one row and column wider (CPU matrices).</summary>
    public static bool Pads(long n) => n >= MinimumPaddedWidth && (n & (n - 1)) == 0;

    /// <summary>
    /// Eigenvalues (ascending, length n) and eigenvectors (n × n, as columns, column-major as <c>linalg.eigh</c> returns
    /// them) of the symmetric n × n <paramref name="a"/>, of which eigh reads the lower triangle.
    /// </summary>
    /// <param name="a">The matrix (CPU matrices of power-of-two width ≥ 256 are padded; others go to eigh as they are).</param>
    /// <param name="semiDefinite">True when <paramref name="a"/> is positive semi-definite up to rounding by construction:
    /// the padded result is used without the host read that checks c came first.</param>
    /// <returns>Fresh tensors in <paramref name="a"/>'s dtype. With non-finite entries in <paramref name="a"/> (or a failed
    /// solve) they may hold NaN, as <c>linalg.eigh</c>'s would; native failures propagate as its exceptions.</returns>
    public static (Tensor Values, Tensor Vectors) Of(Tensor a, bool semiDefinite = false)
    {
        long n = a.size(-1);
        if (a.dim() == 2 && a.device_type == DeviceType.CPU && Pads(n) && Padded(a, n, semiDefinite) is { } pairs) return pairs;
        return linalg.eigh(a);
    }

    /// <summary>A's pairs from the padded matrix, or null when c did not come first.</summary>
    private static (Tensor Values, Tensor Vectors)? Padded(Tensor a, long n, bool semiDefinite)
    {
        using var scope = NewDisposeScope();
        var padded = zeros(n + 1, n + 1, dtype: a.dtype, device: a.device);
        padded.narrow(0, 0, n).narrow(1, 0, n).copy_(a);
        padded[n, n] = a.diagonal().sum().div_(n).clamp_min_(1e-30).neg_();
        var (values, vectors) = linalg.eigh(padded);
        // The eigenvector of c is ±e_{n+1}: its last entry is ±1 where c comes first and 0 where it does not. Non-finite
        // values are returned as they are (the caller's check takes its fallback as for eigh of A).
        if (!semiDefinite)
        {
            var check = HostRead.Doubles(stack(new[] { vectors[n, 0].abs().to_type(ScalarType.Float64), values.sum(ScalarType.Float64) }));
            if (double.IsFinite(check[1]) && !(check[0] > 0.5)) return null;
        }
        Interlocked.Increment(ref _paddedDecompositions);
        var pairValues = values.narrow(0, 1, n).clone();
        // The same column-major layout as eigh's own result.
        var pairVectors = vectors.narrow(0, 0, n).narrow(1, 1, n).t().contiguous().t();
        return (scope.MoveToOuter(pairValues), scope.MoveToOuter(pairVectors));
    }
}
