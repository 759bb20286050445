using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>Thrown when a symmetric system cannot be solved even after every fallback.</summary>
public class CholeskyFailedException : Exception
{
    public CholeskyFailedException(string message) : base(message) { }
}

/// <summary>Thrown when a matrix to factor or decompose holds ∞ or NaN: no jitter or eigenvalue floor can help.</summary>
public sealed class NonFiniteMatrixException : CholeskyFailedException
{
    public NonFiniteMatrixException(string message) : base(message) { }
}

/// <summary>
/// Solves symmetric positive (semi-)definite systems robustly: Cholesky (cholesky_ex, no exception on
/// failure) → retry in float64 → retry with growing diagonal jitter → symmetric eigendecomposition with
/// eigenvalues clamped at a floor. Callers damp first; the fallbacks only guard against round-off.
/// </summary>
public static class SafeCholesky
{
    /// <summary>
    /// Lower Cholesky factor L of the symmetric matrix <paramref name="a"/> (L Lᵀ ≈ a), with fallbacks: in a's dtype when
    /// the first attempt succeeds, else in float64 (the retry's dtype), so that the caller's solve or inverse keeps what
    /// the retry gained and converts only its result (a float32 L of a matrix float32 could not factor loses it again).
    /// </summary>
    /// <remarks>At most <see cref="JitterAttempts"/> jittered retries, each adding 100× the previous jitter, from
    /// 1e-12 to 1e-2 times the largest diagonal entry.</remarks>
    /// <exception cref="NonFiniteMatrixException">The matrix holds ∞ or NaN (checked only after the first attempt failed).</exception>
    /// <exception cref="CholeskyFailedException">The matrix is not positive definite even with the largest jitter.</exception>
    public static Tensor Factor(Tensor a)
    {
        // Cholesky reads one triangle only; the symmetrised copy is needed by the fallbacks alone.
        var (l, info) = linalg.cholesky_ex(a);
        if (Succeeded(l, info)) return l;

        var sym = (a + a.transpose(-2, -1)) * 0.5;

        var a64 = sym.to_type(ScalarType.Float64);
        ThrowIfNonFinite(a64);
        double scale = Math.Max(a64.diagonal(0, -2, -1).abs().max().ToDouble(), 1e-300);
        var eye64 = eye(a.size(-1), dtype: ScalarType.Float64, device: a.device);
        double jitter = 0;
        for (int attempt = 0; attempt <= JitterAttempts; attempt++)
        {
            var (l64, info64) = linalg.cholesky_ex(a64 + jitter * eye64);
            if (info64.max().item<int>() == 0 && l64.isfinite().all().item<bool>()) return l64;
            jitter = attempt == 0 ? 1e-12 * scale : jitter * 100;
        }
        throw new CholeskyFailedException($"Cholesky failed for a {a.size(-1)}×{a.size(-1)} matrix even with jitter {1e-2 * scale:E2}; increase the damping");
    }

    /// <summary>Jittered retries after the float64 attempt: 1e-12, 1e-10, …, 1e-2 times the scale.</summary>
    public const int JitterAttempts = 6;

    /// <summary>Throws <see cref="NonFiniteMatrixException"/> if <paramref name="a"/> holds ∞ or NaN (one host sync; fallback paths only).</summary>
    public static void ThrowIfNonFinite(Tensor a)
    {
        if (!a.isfinite().all().item<bool>())
            throw new NonFiniteMatrixException(
                $"a {string.Join("×", a.Sizes())} matrix to factor holds ∞ or NaN; the statistics it was built from overflowed " +
                "(scale the inputs, or use a float64 model)");
    }

    /// <summary>
    /// info = 0 and a finite factor: info read directly (one matrix) or through any() (a batch), then, only when it is 0,
    /// the factor's float64 sum (one native result and two reads, against six results fused into one read).
    /// </summary>
    private static bool Succeeded(Tensor l, Tensor info)
    {
        using var scope = NewDisposeScope();
        bool factored = info.dim() == 0 ? info.item<int>() == 0 : !info.ne(0).any().item<bool>();
        return factored && double.IsFinite(l.sum(ScalarType.Float64).ToDouble());
    }

    /// <summary>x = a⁻¹ b for symmetric positive definite a (b: n or n × k), in b's dtype; solved in float64 when a's dtype failed.</summary>
    public static Tensor Solve(Tensor a, Tensor b)
    {
        bool vector = b.dim() == 1;
        var rhs = vector ? b.unsqueeze(1) : b;
        Tensor x;
        try
        {
            var l = Factor(a);
            x = CholeskySolve.Apply(l, rhs.to_type(l.dtype)).to_type(b.dtype);
        }
        catch (CholeskyFailedException e) when (e is not NonFiniteMatrixException)
        {
            x = EigenSolve(a, rhs);
        }
        return vector ? x.squeeze(1) : x;
    }

    /// <summary>Solve through eigh with eigenvalues clamped below at 1e-12 · max: the last resort.</summary>
    public static Tensor EigenSolve(Tensor a, Tensor b)
    {
        var a64 = ((a + a.transpose(-2, -1)) * 0.5).to_type(ScalarType.Float64);
        ThrowIfNonFinite(a64);
        var (evals, evecs) = NativeCall.Run($"eigendecomposition (eigh) of a {a64.size(0)}×{a64.size(0)} matrix",
            () => linalg.eigh(a64), "increase the damping, or check the statistics for extreme values");
        double floor = Math.Max(evals.abs().max().ToDouble() * 1e-12, 1e-300);
        var inv = evals.clamp_min(floor).reciprocal();
        var x = evecs.mm((evecs.t().mm(b.to_type(ScalarType.Float64))) * inv.unsqueeze(1));
        return x.to_type(b.dtype);
    }
}
