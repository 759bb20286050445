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
    /// Symmetric eigendecompositions A = Q_A diag(eᴬ) Q_Aᵀ, G = Q_G diag(eᴳ) Q_Gᵀ (linalg.eigh, in float64). Several
    /// times the flops of the Cholesky inverse (≈ 9d³), but independent of λ, so damping may change every step for free; supports both
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
