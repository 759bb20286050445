namespace NaturalGradient.Fisher;

/// <summary>Which targets feed the metric's backward passes (shared/notes/curvature-conventions.md).</summary>
public enum FisherKind
{
    /// <summary>Training labels: F_emp = (1/m) Σ ∇ℓᵢ∇ℓᵢᵀ (seed 000 eq 37; seed 002 "empirical Fisher").</summary>
    Empirical,
    /// <summary>Targets sampled from the model's predictive distribution, k per input: an unbiased estimate of the true Fisher.</summary>
    MonteCarlo,
    /// <summary>The true Fisher in closed form, J_rᵀ H_out J_r (= generalised Gauss-Newton), via the columns of a factor of H_out.</summary>
    Exact,
}

/// <summary>Which second-moment matrix of per-example gradients the dense and block methods use (seed 001 §4.1).</summary>
public enum MetricForm
{
    /// <summary>Uncentred second moment (the Fisher of the chosen kind).</summary>
    Uncentered,
    /// <summary>TONGA's centred covariance C = (1/m) Σ (gᵢ − ḡ)(gᵢ − ḡ)ᵀ (seed 001 eq 12).</summary>
    Centered,
}
