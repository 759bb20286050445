namespace NaturalGradient.Damping;

/// <summary>Supplies the damping λ of (M + λI)Δ = g and adapts it from observed reduction ratios.</summary>
/// <remarks>Damping is in units of the loss's curvature: scaling the loss by c calls for c·λ (docs/DAMPING.md).</remarks>
public interface IDampingPolicy
{
    /// <summary>The damping to use for the next step.</summary>
    double Current { get; }

    /// <summary>Reports the reduction ratio ρ of the step just taken (NaN when it could not be computed).</summary>
    void Observe(double rho);
}

/// <summary>A fixed λ.</summary>
public sealed class ConstantDamping : IDampingPolicy
{
    public ConstantDamping(double damping)
    {
        if (!(damping >= 0) || double.IsInfinity(damping))
            throw new ArgumentOutOfRangeException(nameof(damping), damping, "damping must be a finite number ≥ 0");
        Current = damping;
    }

    public double Current { get; }
    public void Observe(double rho) { }
}
