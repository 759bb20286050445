namespace NaturalGradient.Damping;

/// <summary>
/// Levenberg–Marquardt adaptation (seed 001 §8.3, eq 29–30; Martens 2010 §4.1): from the reduction ratio
/// ρ = (L(θ + Δθ) − L(θ)) / q(Δθ) of the actual to the predicted loss change, λ ← λ · <see cref="Increase"/>
/// when ρ &lt; <see cref="LowRatio"/> (the quadratic model over-promised), λ ← λ · <see cref="Decrease"/> when
/// ρ &gt; <see cref="HighRatio"/> (the model is trustworthy), clamped to [<see cref="Minimum"/>, <see cref="Maximum"/>].
/// A non-finite ρ counts as a failure (increase).
/// </summary>
public sealed class LevenbergMarquardtDamping : IDampingPolicy
{
    /// <param name="initial">Starting λ (&gt; 0).</param>
    /// <param name="decrease">Factor in (0, 1) applied when ρ is high; default 2/3.</param>
    /// <param name="increase">Factor &gt; 1 applied when ρ is low; default 3/2.</param>
    /// <param name="lowRatio">Below this ρ, increase; default 0.25.</param>
    /// <param name="highRatio">Above this ρ, decrease; default 0.75.</param>
    /// <param name="minimum">Floor for λ; default 1e-8.</param>
    /// <param name="maximum">Ceiling for λ; default 1e4.</param>
    public LevenbergMarquardtDamping(double initial, double decrease = 2.0 / 3.0, double increase = 1.5,
        double lowRatio = 0.25, double highRatio = 0.75, double minimum = 1e-8, double maximum = 1e4)
    {
        if (!(minimum > 0)) throw new ArgumentOutOfRangeException(nameof(minimum), minimum, "minimum must be > 0");
        if (!(maximum >= minimum)) throw new ArgumentOutOfRangeException(nameof(maximum), maximum, $"maximum must be ≥ minimum ({minimum})");
        if (!(initial > 0) || double.IsInfinity(initial)) throw new ArgumentOutOfRangeException(nameof(initial), initial, "initial damping must be a finite number > 0");
        if (!(decrease > 0 && decrease < 1)) throw new ArgumentOutOfRangeException(nameof(decrease), decrease, "decrease must be in (0, 1)");
        if (!(increase > 1)) throw new ArgumentOutOfRangeException(nameof(increase), increase, "increase must be > 1");
        if (!(lowRatio < highRatio)) throw new ArgumentOutOfRangeException(nameof(lowRatio), lowRatio, $"lowRatio must be < highRatio ({highRatio})");
        Decrease = decrease;
        Increase = increase;
        LowRatio = lowRatio;
        HighRatio = highRatio;
        Minimum = minimum;
        Maximum = maximum;
        Current = Math.Clamp(initial, minimum, maximum);
    }

    public double Current { get; private set; }
    public double Decrease { get; }
    public double Increase { get; }
    public double LowRatio { get; }
    public double HighRatio { get; }
    public double Minimum { get; }
    public double Maximum { get; }

    /// <summary>Sets λ (clamped to [<see cref="Minimum"/>, <see cref="Maximum"/>]), e.g. when a run is resumed from a checkpoint.</summary>
    /// <param name="current">A finite λ &gt; 0.</param>
    public void Reset(double current)
    {
        if (!(current > 0) || double.IsInfinity(current)) throw new ArgumentOutOfRangeException(nameof(current), current, "damping must be a finite number > 0");
        Current = Math.Clamp(current, Minimum, Maximum);
    }

    public void Observe(double rho)
    {
        if (double.IsNaN(rho) || double.IsInfinity(rho) || rho < LowRatio) Current *= Increase;
        else if (rho > HighRatio) Current *= Decrease;
        Current = Math.Clamp(Current, Minimum, Maximum);
    }
}
