namespace NaturalGradient.Curvature;

/// <summary>Which approximation of the Fisher the natural gradient uses (docs/ALGORITHMS.md).</summary>
public enum CurvatureStructure
{
    /// <summary>Dense metric over all covered parameters (seed 000 eq 36).</summary>
    Exact,
    /// <summary>A dense metric block per layer (seed 000 eq 38–39).</summary>
    BlockDiagonal,
    /// <summary>Block-diagonal, solved exactly through the m × m Gram matrix (TENGraD, seed 000 eq 40–43).</summary>
    Tengrad,
    /// <summary>Diagonal of the metric.</summary>
    Diagonal,
    /// <summary>Kronecker-factored blocks A ⊗ G (Martens &amp; Grosse 2015; seed 000 §3; seed 002).</summary>
    Kfac,
    /// <summary>K-FAC's eigenbasis with re-estimated diagonal scaling (George et al. 2018).</summary>
    Ekfac,
    /// <summary>Matrix-free Gauss-Newton/Fisher products solved by CG or MINRES (seed 001 algorithm 1).</summary>
    HessianFree,
    /// <summary>K-BFGS: A ⊗ G blocks with G⁻¹ kept by damped (L-)BFGS from pre-activation secant pairs (Goldfarb et al. 2020; seed 000 §3).</summary>
    Kbfgs,
    /// <summary>Per layer, TENGraD's exact Woodbury block or K-FAC, whichever a flop cost model says is cheaper (Curvature/Auto).</summary>
    Auto,
}
