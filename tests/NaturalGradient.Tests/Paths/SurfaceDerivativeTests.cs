using NaturalGradient.Training.Experiments.Paths;

namespace NaturalGradient.Tests.Paths;

/// <summary>The closed-form loss, gradient, Hessian, G and C of <see cref="AutoencoderSurface"/> against TorchSharp autograd and finite differences (float64).</summary>
[Collection("Torch")]
public class SurfaceDerivativeTests
{
    private static readonly AutoencoderSurface Surface = AutoencoderSurface.Sample(0);

    /// <summary>Both starts, both minima (seed 0), the saddle region and a point with saturated sigmoids.</summary>
    public static TheoryData<double, double> Points => new()
    {
        { -3, 1 }, { 3, -1 }, { 1.8972, 2.8571 }, { -1.0865, -2.8272 }, { 0.3, 0.05 }, { -2.5, 6.5 },
    };

    private static void AssertClose(double[,] expected, double[,] actual, double rtol, string label)
    {
        double scale = 0, err = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
            {
                scale = Math.Max(scale, Math.Abs(expected[i, j]));
                err = Math.Max(err, Math.Abs(expected[i, j] - actual[i, j]));
            }
        Assert.True(err <= rtol * scale + 1e-300, $"{label}: max |Δ| = {err:E3} vs scale {scale:E3} (rtol {rtol:E0})");
    }

    private static void AssertClose(double expected, double actual, double rtol, string label) =>
        Assert.True(Math.Abs(expected - actual) <= rtol * Math.Abs(expected), $"{label}: expected {expected:R}, got {actual:R}");

    [Theory]
    [MemberData(nameof(Points))]
    public void ClosedForm_MatchesAutograd_Float64(double b, double w)
    {
        var closed = Surface.Evaluate(new Vec2(b, w));
        var auto = AutoencoderAutograd.At(Surface.Data, new[] { b, w });

        AssertClose(auto.Loss, closed.Loss, 1e-13, "loss");
        AssertClose(new double[,] { { auto.Gradient[0], 0 }, { auto.Gradient[1], 0 } },
            new double[,] { { closed.Gradient.B, 0 }, { closed.Gradient.W, 0 } }, 1e-12, "gradient");
        AssertClose(auto.Hessian, AutoencoderAutograd.ToArray(closed.Hessian), 1e-12, "Hessian (double backward)");
        AssertClose(auto.Metric, AutoencoderAutograd.ToArray(closed.Metric), 1e-12, "metric G = mean JᵀJ");
        AssertClose(auto.Covariance, AutoencoderAutograd.ToArray(closed.Covariance), 1e-12, "covariance C (eq. 12)");
    }

    [Theory]
    [MemberData(nameof(Points))]
    public void Metric_IsTheGaussNewtonPart_HessianMinusResidualTerm(double b, double w)
    {
        // Autograd alone: H = G_autograd − ∇²(mean stop_grad(r) x̂); the closed-form G must equal H + that term.
        var auto = AutoencoderAutograd.At(Surface.Data, new[] { b, w });
        var closed = Surface.Evaluate(new Vec2(b, w));
        var hPlusResidual = new double[2, 2];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                hPlusResidual[i, j] = auto.Hessian[i, j] + auto.ResidualHessian[i, j];
        AssertClose(hPlusResidual, AutoencoderAutograd.ToArray(closed.Metric), 1e-11, "H + residual term = G");
        AssertClose(AutoencoderAutograd.ToArray(-1.0 * closed.ResidualTerm), auto.ResidualHessian, 1e-11, "closed-form residual term");
        // G is a Gram matrix: positive semi-definite, unlike H away from the minima.
        Assert.True(closed.Metric.Eigenvalues.Min >= -1e-14);
        Assert.True(closed.Covariance.Eigenvalues.Min >= -1e-14);
    }

    [Theory]
    [MemberData(nameof(Points))]
    public void GradientAndHessian_MatchCentralDifferences(double b, double w)
    {
        const double h = 1e-5;
        var at = Surface.Evaluate(new Vec2(b, w));
        var eb = new Vec2(h, 0);
        var ew = new Vec2(0, h);
        var theta = new Vec2(b, w);
        double dLb = (Surface.Loss(theta + eb) - Surface.Loss(theta - eb)) / (2 * h);
        double dLw = (Surface.Loss(theta + ew) - Surface.Loss(theta - ew)) / (2 * h);
        double gscale = Math.Max(at.Gradient.Norm, 1e-3);
        Assert.True(Math.Abs(dLb - at.Gradient.B) < 1e-7 * gscale + 1e-9, $"∂L/∂b {at.Gradient.B} vs {dLb}");
        Assert.True(Math.Abs(dLw - at.Gradient.W) < 1e-7 * gscale + 1e-9, $"∂L/∂w {at.Gradient.W} vs {dLw}");

        var gb = 1 / (2 * h) * (Surface.Evaluate(theta + eb).Gradient - Surface.Evaluate(theta - eb).Gradient);
        var gw = 1 / (2 * h) * (Surface.Evaluate(theta + ew).Gradient - Surface.Evaluate(theta - ew).Gradient);
        AssertClose(new double[,] { { gb.B, gw.B }, { gb.W, gw.W } }, AutoencoderAutograd.ToArray(at.Hessian), 1e-7, "Hessian vs differences of the gradient");
    }

    [Fact]
    public void Covariance_IsUncentredMinusMeanOuterProduct_AndGradientIsMeanOfPerExample()
    {
        var theta = new Vec2(0.7, -1.3);
        var at = Surface.Evaluate(theta);
        var per = Surface.PerExampleGradients(theta);
        var mean = 1.0 / per.Length * per.Aggregate(default(Vec2), (a, g) => a + g);
        var uncentred = 1.0 / per.Length * per.Aggregate(Sym2.Zero, (a, g) => a + Sym2.Outer(g));
        Assert.True((mean - at.Gradient).Norm < 1e-14);
        var expected = uncentred - Sym2.Outer(mean);
        AssertClose(AutoencoderAutograd.ToArray(expected), AutoencoderAutograd.ToArray(at.Covariance), 1e-12, "C = U − ḡḡᵀ");
    }

    [Fact]
    public void Reconstruction_FollowsTheSeedsFormula_WithMinusB()
    {
        // The seed's error (x − w·sigmoid(w·x + b) + b)² is (x − x̂)² with x̂ = w·σ(w·x + b) − b.
        double x = 0.8, b = 0.4, w = -1.7;
        double seedError = Math.Pow(x - w * (1 / (1 + Math.Exp(-(w * x + b)))) + b, 2);
        double r = x - AutoencoderSurface.Reconstruct(x, b, w);
        Assert.Equal(seedError, r * r, 14);
        var single = new AutoencoderSurface(new[] { x });
        Assert.Equal(0.5 * seedError, single.Loss(new Vec2(b, w)), 14);
    }

    [Fact]
    public void Sample_IsDeterministicPerSeed_AndGridMatchesLoss()
    {
        Assert.Equal(AutoencoderSurface.Sample(3).Data, AutoencoderSurface.Sample(3).Data);
        Assert.NotEqual(AutoencoderSurface.Sample(3).Data, AutoencoderSurface.Sample(4).Data);
        Assert.Equal(100, Surface.Data.Count);

        var grid = Surface.Grid(-4, 4, -2, 3, 11);
        Assert.Equal(-4, grid.B[0]);
        Assert.Equal(4, grid.B[^1]);
        Assert.Equal(3, grid.W[^1]);
        Assert.Equal(Surface.Loss(new Vec2(grid.B[7], grid.W[2])), grid.Loss[7, 2]);
    }
}
