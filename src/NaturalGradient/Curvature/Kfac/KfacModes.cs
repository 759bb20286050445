namespace NaturalGradient.Curvature.Kfac;

/// <summary>How a K-FAC block inverts its damped Kronecker factors.</summary>
public enum KfacInverseMethod
{
    /// <summary>
    /// Cholesky factorisation of each damped factor, (A + π√λ I)⁻¹ and (G + √λ/π I)⁻¹ (via
    /// <see cref="Numerics.SafeCholesky"/>, then cholesky_inverse): about d³ flops per d × d factor, but it depends on λ:
    /// a change of damping forces a refactorisation. Supports <see cref="KfacDampingMode.Factored"/> only.
    /// </summary>
    Cholesky,

    /// <summary>
    /// Symmetric eigendecompositions A = Q_A diag(eᴬ) Q_Aᵀ, G = Q_G diag(eᴳ) Q_Gᵀ (linalg.eigh in the factors' dtype,
    /// retried in float64 on failure). Several times the flops of the Cholesky inverse (≈ 4.67d³ for LAPACK's syevd, plus
    /// 2d³ to form the damped inverse), but independent of λ, so damping may change every step for free; supports both
    /// damping modes.
    /// </summary>
    Eigen,
}

/// <summary>How the damping λ enters a K-FAC block (shared/notes/curvature-conventions.md).</summary>
public enum KfacDampingMode
{
    /// <summary>
    /// π-adjusted factored Tikhonov damping (Martens &amp; Grosse 2015 §6.3):
    /// (G + √λ/π I) ⊗ (A + π√λ I), π² = (tr A / dim A) / (tr G / dim G). Not exactly G ⊗ A + λI: the
    /// cross term adds (√λ/π) I ⊗ A + π√λ G ⊗ I.
    /// </summary>
    Factored,

    /// <summary>
    /// Exact Tikhonov damping of the Kronecker product, (G ⊗ A + λI)⁻¹ = (Q_G ⊗ Q_A) diag(1 / (eᴳᵢ eᴬⱼ + λ)) (Q_G ⊗ Q_A)ᵀ.
    /// Requires <see cref="KfacInverseMethod.Eigen"/> (a Cholesky factorisation of each factor cannot express it).
    /// </summary>
    Eigenbasis,
}

/// <summary>
/// How K-FAC treats a layer applied at T &gt; 1 positions per example — sequence positions, pixels, the calls of a shared
/// layer (Eschenhagen et al. 2023, "Kronecker-Factored Approximate Curvature for Modern Neural Network Architectures").
/// For T = 1 both give the same factors.
/// </summary>
public enum KfacWeightSharing
{
    /// <summary>
    /// K-FAC-expand: positions are treated like extra examples, A = (1/m) Σᵢₜ āᵢₜāᵢₜᵀ, G = (w/T) Σₛᵢₜ δᵢₛₜδᵢₛₜᵀ
    /// (KFC's factors for convolutions). Exact for deep linear networks when the loss is a sum over positions
    /// (per-token outputs); the right choice for language models and per-position targets.
    /// </summary>
    Expand,

    /// <summary>
    /// K-FAC-reduce: positions are aggregated first, āᵢ = (1/T) Σₜ āᵢₜ and δᵢₛ = Σₜ δᵢₛₜ, then A = (1/m) Σᵢ āᵢāᵢᵀ,
    /// G = w Σₛᵢ δᵢₛδᵢₛᵀ. Exact for m = 1 when āᵢₜ does not depend on t (or δ does not); suited to models that pool
    /// positions before the output (sequence classification). Embedding layers always use Expand (A stays diagonal).
    /// </summary>
    Reduce,
}

/// <summary>Precision of the factor GEMMs ĀᵀĀ and DᵀD (and EKFAC's scaling GEMM) for float32 statistics.</summary>
public enum KfacFactorPrecision
{
    /// <summary>The statistics' own dtype (float32 or float64): one GEMM accumulated into the running average.</summary>
    Model,

    /// <summary>
    /// bfloat16 products for float32 statistics: Ā and D are rounded to bfloat16 (8-bit significand, float32's exponent
    /// range), multiplied by a bfloat16 GEMM (float32 accumulation inside the kernel), and the product, rounded to
    /// bfloat16, is added to the float32 running average. One batch's factor then carries a relative (Frobenius) error of
    /// about 3e-3, against a sampling error of about 1/√m for a factor estimated from m examples; the average, the
    /// inverses and every other product stay float32. On a CPU with bfloat16 instructions (AVX512-BF16, AMX) the product
    /// takes 0.7–0.8 of the float32 accumulation's time for the 512–785-wide factors of docs/PERFORMANCE.md; without
    /// them libtorch emulates bfloat16 and it may be slower. Float64 statistics ignore it.
    /// </summary>
    Bfloat16,
}

/// <summary>
/// Precision of the products that apply a K-FAC or EKFAC block to a gradient (the solve), for float32 factors
/// (kfac-pytorch's <c>inv_dtype</c>).
/// </summary>
public enum KfacInversePrecision
{
    /// <summary>The factors' own dtype (float32 or float64).</summary>
    Model,

    /// <summary>
    /// bfloat16 products for float32 factors: K-FAC's damped inverses and the eigenbases of EKFAC and of K-FAC with eigenbasis damping are kept
    /// as bfloat16 copies beside the float32 ones (made when first used after a refresh; (in'² + out²) bfloat16 values per
    /// layer, half the memory of the float32 inverses or bases), the gradient or the statistics'
    /// rows are rounded to bfloat16 (8-bit significand, float32's exponent range), every product of the solve is a bfloat16
    /// GEMM (float32 accumulation inside the kernel, the result rounded to bfloat16), and the direction is returned in
    /// float32. The direction's relative (Frobenius) error against the exact solve grows as the damping shrinks, since the
    /// small eigenvalues of the damped factors amplify the rounding: 0.6–1.1e-2 at λ = 1 and 1.6–6.9e-2 at λ = 0.03 on the
    /// tests' 30-40-3 network (InversePrecisionTests), against about 1e-6 in float32. EKFAC's scaling S is estimated from
    /// the same bfloat16 projections (within 2e-2 of the float32 S). The factors, their running averages, inverses,
    /// eigendecompositions and K-FAC's metric products (<c>Multiply</c>: KL clip, quadratic model) stay float32. On a CPU
    /// with bfloat16 instructions (AVX512-BF16, AMX) these GEMMs take 0.50–0.64 of the float32 time at widths 512–785
    /// (1.6–2.0 times as fast; docs/PERFORMANCE.md); without them libtorch emulates bfloat16 and the solve may be slower.
    /// An index layer's diagonal A (K-FAC's factored damping) stays a float32 column scaling, its G product runs in
    /// bfloat16. Float64 factors and the Kronecker-sum blocks of tied weights (<see cref="KroneckerSumBlock"/>) ignore it.
    /// </summary>
    Bfloat16,
}
