using NaturalGradient.Training.Experiments.Paths;

namespace NaturalGradient.Tests.Paths;

/// <summary>The four methods' steps and paths: the seed's settings, quadratic Newton, reparameterisation invariance, the non-finite guard.</summary>
[Collection("Torch")]
public class PathRunnerTests
{
    private static readonly AutoencoderSurface Surface = AutoencoderSurface.Sample(0);

    [Fact]
    public void DefaultSettings_AreTheSeeds()
    {
        Assert.Equal(new PathMethodSettings(PathMethod.GradientDescent, 0.1, 0), PathMethodSettings.Default(PathMethod.GradientDescent));
        Assert.Equal(new PathMethodSettings(PathMethod.Newton, 1, 1), PathMethodSettings.Default(PathMethod.Newton));
        Assert.Equal(new PathMethodSettings(PathMethod.NaturalGradient, 0.5, 0.01), PathMethodSettings.Default(PathMethod.NaturalGradient));
        Assert.Equal(new PathMethodSettings(PathMethod.CovarianceNaturalGradient, 1, 1), PathMethodSettings.Default(PathMethod.CovarianceNaturalGradient));
        Assert.Equal(4, PathMethodSettings.Defaults.Select(s => s.Method).Distinct().Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => new PathMethodSettings(PathMethod.Newton, 0, 1).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new PathMethodSettings(PathMethod.Newton, 1, -1).Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new PathMethodSettings(PathMethod.GradientDescent, 0.1, 1).Validate());
    }

    [Fact]
    public void Update_IsMinusLearningRateTimesDampedSolve()
    {
        var at = Surface.Evaluate(new Vec2(0.5, -0.7));
        var s = PathMethodSettings.Default(PathMethod.NaturalGradient);
        var step = PathRunner.Update(at, s);
        // (G + λI) step = −η g
        var back = (at.Metric + s.Damping * Sym2.Identity).Multiply(step);
        Assert.True((back + s.LearningRate * at.Gradient).Norm < 1e-13 * at.Gradient.Norm);
        Assert.Equal(-0.1 * at.Gradient, PathRunner.Update(at, PathMethodSettings.Default(PathMethod.GradientDescent)));
    }

    [Fact]
    public void UndampedNewton_ConvergesQuadratically_DampedNewtonOnlyLinearly()
    {
        var minimum = PathRunner.LocalMinimum(Surface, new Vec2(1.9, 2.86));
        Assert.True(Surface.Evaluate(minimum).Gradient.Norm < 1e-12);
        var start = new PathStart("near", minimum + new Vec2(0.08, -0.06));

        var newton = PathRunner.Run(Surface, new PathMethodSettings(PathMethod.Newton, 1, 0), start, 5);
        var e = newton.Points.Select(p => (p.Theta - minimum).Norm).ToArray();
        // e_{k+1} ≤ K e_k² while above round-off: the number of correct digits doubles.
        for (int k = 0; k + 1 < e.Length && e[k] > 1e-5; k++) // below that the reference minimum's own error (~1e-12) dominates
            Assert.True(e[k + 1] <= 5 * e[k] * e[k], $"step {k + 1}: e = {e[k + 1]:E2} vs e_prev² = {e[k] * e[k]:E2}");
        Assert.True(e[3] < 1e-11, $"after 3 undamped Newton steps e = {e[3]:E2}");

        // Damped with I (the seed's setting) the rate is linear: e_{k+1}/e_k tends to a constant in (0, 1).
        var damped = PathRunner.Run(Surface, PathMethodSettings.Default(PathMethod.Newton), start, 8);
        var d = damped.Points.Select(p => (p.Theta - minimum).Norm).ToArray();
        double ratio = d[8] / d[7];
        Assert.InRange(ratio, 0.05, 0.95);
        Assert.InRange(d[7] / d[6], 0.8 * ratio, 1.25 * ratio);
    }

    public static TheoryData<PathMethod> Methods => new()
    {
        PathMethod.NaturalGradient, PathMethod.CovarianceNaturalGradient, PathMethod.Newton, PathMethod.GradientDescent,
    };

    /// <summary>
    /// φ = A θ with a non-orthogonal A. In φ, gradient, G, C and H come from TorchSharp autograd through θ = A⁻¹ φ.
    /// Undamped, the natural-gradient (and Le Roux, Newton) steps satisfy Δφ = A Δθ exactly, so the paths coincide;
    /// gradient descent's Δφ = −η A⁻ᵀ g is not A Δθ = −η A g.
    /// </summary>
    [Theory]
    [MemberData(nameof(Methods))]
    public void Step_MapsThroughTheJacobian_ExceptForGradientDescent(PathMethod method)
    {
        double[,] a = { { 2.0, 1.0 }, { 0.5, 3.0 } };
        double det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0];
        double[,] ainv = { { a[1, 1] / det, -a[0, 1] / det }, { -a[1, 0] / det, a[0, 0] / det } };
        Vec2 Map(double[,] m, Vec2 v) => new(m[0, 0] * v.B + m[0, 1] * v.W, m[1, 0] * v.B + m[1, 1] * v.W);

        var settings = method == PathMethod.GradientDescent
            ? PathMethodSettings.Default(method)
            : new PathMethodSettings(method, PathMethodSettings.Default(method).LearningRate, 0);
        var start = new PathStart("B", new Vec2(3, -1));
        const int steps = 6;
        var theta = PathRunner.Run(Surface, settings, start, steps);
        Assert.False(theta.Stopped);

        var phi = Map(a, start.Point);
        double worst = 0, stepScale = 0;
        for (int k = 1; k <= steps; k++)
        {
            var r = AutoencoderAutograd.At(Surface.Data, new[] { phi.B, phi.W }, ainv);
            var g = new Vec2(r.Gradient[0], r.Gradient[1]);
            Sym2 Sym(double[,] m) => new(m[0, 0], 0.5 * (m[0, 1] + m[1, 0]), m[1, 1]);
            var m = method switch
            {
                PathMethod.NaturalGradient => Sym(r.Metric),
                PathMethod.CovarianceNaturalGradient => Sym(r.Covariance),
                PathMethod.Newton => Sym(r.Hessian),
                _ => Sym2.Identity,
            };
            phi += -settings.LearningRate * (method == PathMethod.GradientDescent ? g : m.SolveDamped(g, 0));
            var back = Map(ainv, phi);
            worst = Math.Max(worst, (back - theta.Points[k].Theta).Norm);
            stepScale = Math.Max(stepScale, (theta.Points[k].Theta - theta.Points[k - 1].Theta).Norm);
        }

        if (method == PathMethod.GradientDescent)
            Assert.True(worst > 0.1 * stepScale, $"gradient descent: φ-path mapped back differs by only {worst:E2} (step {stepScale:E2})");
        else
            Assert.True(worst < 1e-9 * Math.Max(1, stepScale), $"{method}: φ-path mapped back differs from the θ-path by {worst:E2}");
    }

    [Fact]
    public void DampingBreaksTheInvariance_AtFirstOrderInLambda()
    {
        // (G + λI)⁻¹ is not covariant: λI in φ is A⁻ᵀA⁻¹·λ in θ. The mismatch of one step from A shrinks like λ,
        // and with the seed's λ = 0.01 it is large here (G is nearly singular at A): measured ≈ 50 % of the step.
        double[,] a = { { 2.0, 1.0 }, { 0.5, 3.0 } };
        double det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0];
        double[,] ainv = { { a[1, 1] / det, -a[0, 1] / det }, { -a[1, 0] / det, a[0, 0] / det } };
        Vec2 MapA(Vec2 v) => new(a[0, 0] * v.B + a[0, 1] * v.W, a[1, 0] * v.B + a[1, 1] * v.W);
        var theta0 = new Vec2(-3, 1);
        var phi0 = MapA(theta0);
        var r = AutoencoderAutograd.At(Surface.Data, new[] { phi0.B, phi0.W }, ainv);
        var gPhi = new Vec2(r.Gradient[0], r.Gradient[1]);
        var gMetric = new Sym2(r.Metric[0, 0], 0.5 * (r.Metric[0, 1] + r.Metric[1, 0]), r.Metric[1, 1]);
        var at = Surface.Evaluate(theta0);

        double Mismatch(double lambda)
        {
            var mapped = MapA(PathRunner.Update(at, new PathMethodSettings(PathMethod.NaturalGradient, 0.5, lambda)));
            var dPhi = -0.5 * gMetric.SolveDamped(gPhi, lambda);
            return (dPhi - mapped).Norm / mapped.Norm;
        }

        double m3 = Mismatch(1e-3), m4 = Mismatch(1e-4), m5 = Mismatch(1e-5);
        Assert.InRange(m4 / m5, 8, 12);
        Assert.InRange(m3 / m4, 5, 12);
        Assert.True(Mismatch(0) < 1e-10);
        Assert.InRange(Mismatch(0.01), 0.2, 0.8);
    }

    [Fact]
    public void NonFiniteStep_StopsThePath_AndSaysSo()
    {
        // An absurd learning rate: the first step lands where the loss overflows to +∞.
        var huge = PathRunner.Run(Surface, new PathMethodSettings(PathMethod.GradientDescent, 1e300, 0), PathStart.Defaults[1], 10);
        Assert.True(huge.Stopped);
        Assert.Contains("before step 1", huge.StopReason);
        Assert.Single(huge.Points);
        Assert.All(huge.Points, p => Assert.True(double.IsFinite(p.Loss)));

        // One example: its centred gradient covariance is exactly 0, so undamped Le Roux has no solution.
        var single = new AutoencoderSurface(new[] { 0.5 });
        var singular = PathRunner.Run(single, new PathMethodSettings(PathMethod.CovarianceNaturalGradient, 1, 0), new PathStart("s", new Vec2(0, 1)), 5);
        Assert.True(singular.Stopped);
        Assert.Contains("update is not finite", singular.StopReason);
        Assert.True(double.IsNaN(Sym2.Zero.SolveDamped(new Vec2(1, 1), 0).B));
    }

    [Fact]
    public void DefaultRun_ReproducesTheFiguresObservations()
    {
        var runs = PathRunner.RunAll(Surface, PathStart.Defaults, 100);
        Assert.Equal(8, runs.Count);
        Assert.All(runs, t => Assert.Equal(101, t.Points.Count));
        var summary = runs.ToDictionary(t => (t.Start.Name, t.Method), t => PathRunner.Summarize(Surface, t));

        // From A every method heads to the same (w > 0) minimum; the natural gradient gets there first.
        Assert.All(PathMethodSettings.Defaults, s => Assert.True(summary[("A", s.Method)].Minimum.W > 0));
        var ngA = summary[("A", PathMethod.NaturalGradient)].StepsToWithin!.Value;
        Assert.All(PathMethodSettings.Defaults.Where(s => s.Method != PathMethod.NaturalGradient),
            s => Assert.True((summary[("A", s.Method)].StepsToWithin ?? int.MaxValue) > ngA));
        Assert.Null(summary[("A", PathMethod.GradientDescent)].StepsToWithin); // η = 0.1 is too slow for 100 steps

        // From B the natural gradient finds a different minimum (w < 0) than gradient descent (w > 0).
        Assert.True(summary[("B", PathMethod.NaturalGradient)].Minimum.W < 0);
        Assert.True(summary[("B", PathMethod.GradientDescent)].Minimum.W > 0);
    }
}
