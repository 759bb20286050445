namespace NaturalGradient.Training.Experiments.Paths;

/// <summary>Everything the four methods of the paths experiment need at one θ = (b, w), exact in float64.</summary>
/// <param name="Theta">The parameters (b, w).</param>
/// <param name="Loss">L(θ) = (1/n) Σᵢ ½ (xᵢ − x̂ᵢ)².</param>
/// <param name="Gradient">∂L/∂θ.</param>
/// <param name="Hessian">∂²L/∂θ² = G − (1/n) Σᵢ rᵢ ∂²x̂ᵢ/∂θ² (rᵢ = xᵢ − x̂ᵢ).</param>
/// <param name="Metric">Amari's metric for a unit-variance Gaussian output, G = (1/n) Σᵢ Jᵢᵀ Jᵢ with Jᵢ = ∂x̂ᵢ/∂θ (also the Gauss–Newton matrix).</param>
/// <param name="Covariance">Le Roux's centred covariance of per-example gradients, C = (1/n) Σᵢ (gᵢ − ḡ)(gᵢ − ḡ)ᵀ (seed 001 eq. 12).</param>
public sealed record SurfacePoint(Vec2 Theta, double Loss, Vec2 Gradient, Sym2 Hessian, Sym2 Metric, Sym2 Covariance)
{
    /// <summary>The residual term of the Hessian, H − G = −(1/n) Σᵢ rᵢ ∂²x̂ᵢ/∂θ².</summary>
    public Sym2 ResidualTerm => Hessian - Metric;
}

/// <summary>The loss on a regular grid: <c>Loss[i, j] = L(B[i], W[j])</c>.</summary>
public sealed record LossGrid(double[] B, double[] W, double[,] Loss);

/// <summary>
/// Seed 001 §4, Figure 1: a one-hidden-unit auto-encoder with tied weight w and bias b whose error is the seed's
/// (x − w·sigmoid(w·x + b) + b)², i.e. the reconstruction x̂ = w·σ(w·x + b) − b (note the MINUS b: the same b
/// enters the hidden unit and is subtracted at the output). The loss over a fixed sample x₁…xₙ is the mean of
/// ½ (x − x̂)², the negative log-likelihood of a unit-variance Gaussian up to a constant, so that Amari's metric is
/// G = mean Jᵀ J. Gradient, Hessian, G and C are closed-form (checked against TorchSharp autograd in the tests).
/// </summary>
public sealed class AutoencoderSurface
{
    private readonly double[] _x;

    /// <summary>A surface over the given scalar data (at least one value, all finite).</summary>
    public AutoencoderSurface(IEnumerable<double> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        _x = data.ToArray();
        if (_x.Length == 0) throw new ArgumentException("the data must hold at least one value", nameof(data));
        if (_x.Any(v => !double.IsFinite(v))) throw new ArgumentException("the data must be finite", nameof(data));
    }

    /// <summary>The default sample size of <see cref="Sample"/>.</summary>
    public const int DefaultSampleSize = 100;

    /// <summary>
    /// The experiment's data: <paramref name="count"/> draws x ~ N(0, 1), each from one Box–Muller pair of
    /// <see cref="Random"/>(<paramref name="seed"/>): x = √(−2 ln(1 − u₁)) · cos(2π u₂). Deterministic for a seed.
    /// </summary>
    public static AutoencoderSurface Sample(int seed, int count = DefaultSampleSize)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "must be ≥ 1");
        var rng = new Random(seed);
        var x = new double[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2);
        }
        return new AutoencoderSurface(x);
    }

    /// <summary>The data x₁…xₙ.</summary>
    public IReadOnlyList<double> Data => _x;

    /// <summary>The reconstruction x̂ = w·σ(w·x + b) − b.</summary>
    public static double Reconstruct(double x, double b, double w) => w * Sigmoid(w * x + b) - b;

    /// <summary>σ(u) = 1 / (1 + e^−u) (0 or 1 in the tails, never NaN).</summary>
    public static double Sigmoid(double u) => u >= 0 ? 1.0 / (1.0 + Math.Exp(-u)) : Math.Exp(u) / (1.0 + Math.Exp(u));

    /// <summary>L(θ) = (1/n) Σᵢ ½ (xᵢ − x̂ᵢ)².</summary>
    public double Loss(Vec2 theta)
    {
        double sum = 0;
        foreach (double x in _x)
        {
            double r = x - Reconstruct(x, theta.B, theta.W);
            sum += 0.5 * r * r;
        }
        return sum / _x.Length;
    }

    /// <summary>∂x̂/∂θ = (w·s′ − 1, s + w·x·s′) at one x, with s = σ(w x + b), s′ = s(1 − s).</summary>
    public static Vec2 OutputJacobian(double x, Vec2 theta)
    {
        double s = Sigmoid(theta.W * x + theta.B), s1 = s * (1 - s);
        return new Vec2(theta.W * s1 - 1.0, s + theta.W * x * s1);
    }

    /// <summary>∂²x̂/∂θ² at one x: [[w s″, s′ + w x s″], [·, 2 x s′ + w x² s″]], s″ = s′(1 − 2s).</summary>
    public static Sym2 OutputHessian(double x, Vec2 theta)
    {
        double s = Sigmoid(theta.W * x + theta.B), s1 = s * (1 - s), s2 = s1 * (1 - 2 * s);
        double w = theta.W;
        return new Sym2(w * s2, s1 + w * x * s2, 2 * x * s1 + w * x * x * s2);
    }

    /// <summary>The per-example gradients gᵢ = ∂(½ rᵢ²)/∂θ = −rᵢ Jᵢ (their mean is ∂L/∂θ).</summary>
    public Vec2[] PerExampleGradients(Vec2 theta)
    {
        var g = new Vec2[_x.Length];
        for (int i = 0; i < _x.Length; i++)
        {
            double x = _x[i];
            double r = x - Reconstruct(x, theta.B, theta.W);
            g[i] = -r * OutputJacobian(x, theta);
        }
        return g;
    }

    /// <summary>Loss, gradient, Hessian, metric G and covariance C at <paramref name="theta"/>.</summary>
    public SurfacePoint Evaluate(Vec2 theta)
    {
        int n = _x.Length;
        double loss = 0;
        Vec2 grad = default;
        Sym2 metric = Sym2.Zero, residual = Sym2.Zero;
        var per = new Vec2[n];
        for (int i = 0; i < n; i++)
        {
            double x = _x[i];
            double r = x - Reconstruct(x, theta.B, theta.W);
            var j = OutputJacobian(x, theta);
            loss += 0.5 * r * r;
            per[i] = -r * j;
            grad += per[i];
            metric += Sym2.Outer(j);
            residual += r * OutputHessian(x, theta);
        }
        double inv = 1.0 / n;
        grad = inv * grad;
        metric = inv * metric;
        var hessian = metric - inv * residual;
        Sym2 cov = Sym2.Zero;
        foreach (var g in per) cov += Sym2.Outer(g - grad);
        return new SurfacePoint(theta, inv * loss, grad, hessian, metric, inv * cov);
    }

    /// <summary>The loss on a <paramref name="points"/> × <paramref name="points"/> grid over [bMin, bMax] × [wMin, wMax].</summary>
    public LossGrid Grid(double bMin, double bMax, double wMin, double wMax, int points)
    {
        if (points < 2) throw new ArgumentOutOfRangeException(nameof(points), points, "must be ≥ 2");
        if (!(bMin < bMax) || !(wMin < wMax) || !double.IsFinite(bMax - bMin) || !double.IsFinite(wMax - wMin))
            throw new ArgumentException("the grid needs finite ranges with min < max");
        var bs = Linspace(bMin, bMax, points);
        var ws = Linspace(wMin, wMax, points);
        var loss = new double[points, points];
        for (int i = 0; i < points; i++)
            for (int j = 0; j < points; j++)
                loss[i, j] = Loss(new Vec2(bs[i], ws[j]));
        return new LossGrid(bs, ws, loss);
    }

    private static double[] Linspace(double lo, double hi, int n) =>
        Enumerable.Range(0, n).Select(k => k == n - 1 ? hi : lo + (hi - lo) * k / (n - 1)).ToArray();
}
