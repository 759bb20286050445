namespace NaturalGradient.Training.Experiments.Paths;

/// <summary>The four methods of seed 001 Figure 1. Every step is θ ← θ − η (M + λI)⁻¹ g for a matrix M of the method.</summary>
public enum PathMethod
{
    /// <summary>Gradient descent, M + λI = I (seed colour purple).</summary>
    GradientDescent,
    /// <summary>Newton's method, M = the exact Hessian H (blue).</summary>
    Newton,
    /// <summary>Amari's natural gradient, M = the metric G = mean Jᵀ J (gray).</summary>
    NaturalGradient,
    /// <summary>Le Roux's natural gradient, M = the centred covariance C of per-example gradients (orange).</summary>
    CovarianceNaturalGradient,
}

/// <summary>Learning rate η and damping λ of one method: Δθ = −η (M + λI)⁻¹ g.</summary>
/// <param name="Method">Which matrix M.</param>
/// <param name="LearningRate">η, finite and &gt; 0.</param>
/// <param name="Damping">λ, finite and ≥ 0; must be 0 for <see cref="PathMethod.GradientDescent"/> (no matrix).</param>
public sealed record PathMethodSettings(PathMethod Method, double LearningRate, double Damping)
{
    /// <summary>
    /// Seed 001 §8.4: SGD η = 0.1; Amari's natural gradient η = 0.5, λ = 0.01; covariance of gradients η = 1, λ = 1;
    /// Newton damped with I and no learning rate (η = 1).
    /// </summary>
    public static PathMethodSettings Default(PathMethod method) => method switch
    {
        PathMethod.GradientDescent => new(method, 0.1, 0.0),
        PathMethod.Newton => new(method, 1.0, 1.0),
        PathMethod.NaturalGradient => new(method, 0.5, 0.01),
        PathMethod.CovarianceNaturalGradient => new(method, 1.0, 1.0),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown method"),
    };

    /// <summary>The seed's settings for all four methods, in the order Newton, natural gradient, Le Roux, gradient descent.</summary>
    public static IReadOnlyList<PathMethodSettings> Defaults { get; } =
    [
        Default(PathMethod.Newton), Default(PathMethod.NaturalGradient),
        Default(PathMethod.CovarianceNaturalGradient), Default(PathMethod.GradientDescent),
    ];

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for an invalid η or λ.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Method)) throw new ArgumentOutOfRangeException(nameof(Method), Method, "unknown method");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "must be a finite number > 0");
        if (!(Damping >= 0) || !double.IsFinite(Damping))
            throw new ArgumentOutOfRangeException(nameof(Damping), Damping, "must be a finite number ≥ 0");
        if (Method == PathMethod.GradientDescent && Damping != 0)
            throw new ArgumentOutOfRangeException(nameof(Damping), Damping, "gradient descent has no matrix to damp; use 0");
    }
}

/// <summary>A named starting point.</summary>
public sealed record PathStart(string Name, Vec2 Point)
{
    /// <summary>
    /// The two starts used for Figure 1 with the default data (seed 0): A = (b, w) = (−3, 1), from which all four
    /// methods reach the same (w &gt; 0) minimum along different paths, and B = (3, −1), from which Newton and
    /// Amari's natural gradient reach the w &lt; 0 minimum while gradient descent and Le Roux's method reach the w &gt; 0 one.
    /// </summary>
    public static IReadOnlyList<PathStart> Defaults { get; } = [new("A", new Vec2(-3, 1)), new("B", new Vec2(3, -1))];
}

/// <summary>One recorded point of a path; step 0 is the start.</summary>
public sealed record PathPoint(int Step, double B, double W, double Loss)
{
    public Vec2 Theta => new(B, W);
}

/// <summary>A method's path from one start.</summary>
/// <param name="Settings">Method, η and λ.</param>
/// <param name="Start">Where it began.</param>
/// <param name="Points">Steps 0…k (k = the requested steps unless the path was stopped).</param>
/// <param name="StopReason">Null when all steps were taken; otherwise why the path stopped (a non-finite step).</param>
public sealed record Trajectory(PathMethodSettings Settings, PathStart Start, IReadOnlyList<PathPoint> Points, string? StopReason)
{
    public PathMethod Method => Settings.Method;
    public bool Stopped => StopReason is not null;
    public PathPoint Final => Points[^1];
}

/// <summary>Where a path ends up, as reported in paths.md.</summary>
/// <param name="Trajectory">The path.</param>
/// <param name="Minimum">The local minimum of the basin the path ends in: found by Levenberg–Marquardt-damped Newton from its last point.</param>
/// <param name="MinimumLoss">L at <paramref name="Minimum"/>.</param>
/// <param name="Tolerance">The loss tolerance of <paramref name="StepsToWithin"/>.</param>
/// <param name="StepsToWithin">The first step whose loss is within <paramref name="Tolerance"/> of <paramref name="MinimumLoss"/>, or null if none is.</param>
public sealed record PathSummary(Trajectory Trajectory, Vec2 Minimum, double MinimumLoss, double Tolerance, int? StepsToWithin)
{
    public double FinalLoss => Trajectory.Final.Loss;
}

/// <summary>Names of the methods in files and plots.</summary>
public static class PathMethodNames
{
    /// <summary>The identifier in paths.csv: newton, natural-gradient, le-roux, gradient-descent.</summary>
    public static string Id(this PathMethod method) => method switch
    {
        PathMethod.GradientDescent => "gradient-descent",
        PathMethod.Newton => "newton",
        PathMethod.NaturalGradient => "natural-gradient",
        PathMethod.CovarianceNaturalGradient => "le-roux",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown method"),
    };

    /// <summary>A human-readable name (legend, summary).</summary>
    public static string DisplayName(this PathMethod method) => method switch
    {
        PathMethod.GradientDescent => "Gradient descent",
        PathMethod.Newton => "Newton",
        PathMethod.NaturalGradient => "Natural gradient (Amari)",
        PathMethod.CovarianceNaturalGradient => "Le Roux's natural gradient",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown method"),
    };
}
