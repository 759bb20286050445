namespace NaturalGradient.Training.Experiments.Paths;

/// <summary>Runs the four methods of seed 001 Figure 1 on an <see cref="AutoencoderSurface"/>.</summary>
public static class PathRunner
{
    /// <summary>The update Δθ = −η (M + λI)⁻¹ g of <paramref name="settings"/> at an evaluated point (gradient descent: −η g).</summary>
    public static Vec2 Update(SurfacePoint at, PathMethodSettings settings)
    {
        ArgumentNullException.ThrowIfNull(at);
        ArgumentNullException.ThrowIfNull(settings);
        var direction = settings.Method switch
        {
            PathMethod.GradientDescent => at.Gradient,
            PathMethod.Newton => at.Hessian.SolveDamped(at.Gradient, settings.Damping),
            PathMethod.NaturalGradient => at.Metric.SolveDamped(at.Gradient, settings.Damping),
            PathMethod.CovarianceNaturalGradient => at.Covariance.SolveDamped(at.Gradient, settings.Damping),
            _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.Method, "unknown method"),
        };
        return -settings.LearningRate * direction;
    }

    /// <summary>
    /// Takes <paramref name="steps"/> steps of <paramref name="settings"/> from <paramref name="start"/>. A step whose
    /// update, new point or new loss is not finite is not taken: the path stops there and says so in
    /// <see cref="Trajectory.StopReason"/>.
    /// </summary>
    public static Trajectory Run(AutoencoderSurface surface, PathMethodSettings settings, PathStart start, int steps)
    {
        ArgumentNullException.ThrowIfNull(surface);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(start);
        settings.Validate();
        if (steps < 0) throw new ArgumentOutOfRangeException(nameof(steps), steps, "must be ≥ 0");
        if (!start.Point.IsFinite) throw new ArgumentException("the start must be finite", nameof(start));

        var theta = start.Point;
        var points = new List<PathPoint>(steps + 1);
        var at = surface.Evaluate(theta);
        points.Add(new PathPoint(0, theta.B, theta.W, at.Loss));
        for (int t = 1; t <= steps; t++)
        {
            var delta = Update(at, settings);
            if (!delta.IsFinite)
                return new Trajectory(settings, start, points, $"stopped before step {t}: the update is not finite (singular or overflowing matrix at {theta})");
            var next = theta + delta;
            if (!next.IsFinite)
                return new Trajectory(settings, start, points, $"stopped before step {t}: the new point is not finite");
            var nextAt = surface.Evaluate(next);
            if (!double.IsFinite(nextAt.Loss))
                return new Trajectory(settings, start, points, $"stopped before step {t}: the loss at {next} is not finite");
            theta = next;
            at = nextAt;
            points.Add(new PathPoint(t, theta.B, theta.W, at.Loss));
        }
        return new Trajectory(settings, start, points, null);
    }

    /// <summary>Every method of <paramref name="settings"/> (default: the seed's four) from every start, starts outermost.</summary>
    public static IReadOnlyList<Trajectory> RunAll(AutoencoderSurface surface, IEnumerable<PathStart> starts, int steps,
        IEnumerable<PathMethodSettings>? settings = null)
    {
        var methods = (settings ?? PathMethodSettings.Defaults).ToList();
        return starts.SelectMany(s => methods.Select(m => Run(surface, m, s, steps))).ToList();
    }

    /// <summary>
    /// The local minimum near <paramref name="from"/>: Newton steps (H + μI)⁻¹ g with Levenberg–Marquardt control of μ
    /// (a step is kept only if it lowers L), until ‖g‖ ≤ 1e-12 or <paramref name="maxIterations"/>.
    /// </summary>
    public static Vec2 LocalMinimum(AutoencoderSurface surface, Vec2 from, int maxIterations = 500)
    {
        ArgumentNullException.ThrowIfNull(surface);
        var theta = from;
        var at = surface.Evaluate(theta);
        double mu = 1.0;
        for (int k = 0; k < maxIterations && at.Gradient.Norm > 1e-12; k++)
        {
            var step = -at.Hessian.SolveDamped(at.Gradient, mu);
            var (min, _) = (at.Hessian + mu * Sym2.Identity).Eigenvalues;
            if (step.IsFinite && min > 0)
            {
                var next = surface.Evaluate(theta + step);
                if (next.Loss <= at.Loss)
                {
                    theta += step;
                    at = next;
                    mu = Math.Max(mu / 3, 1e-12);
                    continue;
                }
            }
            mu *= 3;
            if (mu > 1e12) break;
        }
        return theta;
    }

    /// <summary>Where <paramref name="trajectory"/> ends up and when it first came within <paramref name="tolerance"/> of that minimum's loss.</summary>
    public static PathSummary Summarize(AutoencoderSurface surface, Trajectory trajectory, double tolerance = 1e-3)
    {
        ArgumentNullException.ThrowIfNull(trajectory);
        if (!(tolerance > 0)) throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "must be > 0");
        var minimum = LocalMinimum(surface, trajectory.Final.Theta);
        double minLoss = surface.Loss(minimum);
        int? within = trajectory.Points.FirstOrDefault(p => p.Loss - minLoss <= tolerance)?.Step;
        return new PathSummary(trajectory, minimum, minLoss, tolerance, within);
    }
}
