namespace NaturalGradient.Training.Experiments.Paths;

/// <summary>A point or direction in the (b, w) parameter plane of <see cref="AutoencoderSurface"/>, components in that order.</summary>
/// <param name="B">The bias b (x-axis of the figure).</param>
/// <param name="W">The tied weight w (y-axis of the figure).</param>
public readonly record struct Vec2(double B, double W)
{
    public static Vec2 operator +(Vec2 a, Vec2 c) => new(a.B + c.B, a.W + c.W);
    public static Vec2 operator -(Vec2 a, Vec2 c) => new(a.B - c.B, a.W - c.W);
    public static Vec2 operator -(Vec2 a) => new(-a.B, -a.W);
    public static Vec2 operator *(double s, Vec2 a) => new(s * a.B, s * a.W);

    /// <summary>Euclidean dot product.</summary>
    public double Dot(Vec2 other) => B * other.B + W * other.W;

    /// <summary>Euclidean norm.</summary>
    public double Norm => Math.Sqrt(B * B + W * W);

    /// <summary>True when both components are finite.</summary>
    public bool IsFinite => double.IsFinite(B) && double.IsFinite(W);

    public override string ToString() => FormattableString.Invariant($"(b={B:G6}, w={W:G6})");
}

/// <summary>A symmetric 2×2 matrix over (b, w): [[BB, BW], [BW, WW]].</summary>
public readonly record struct Sym2(double BB, double BW, double WW)
{
    public static Sym2 Zero => default;
    public static Sym2 Identity => new(1, 0, 1);

    public static Sym2 operator +(Sym2 a, Sym2 c) => new(a.BB + c.BB, a.BW + c.BW, a.WW + c.WW);
    public static Sym2 operator -(Sym2 a, Sym2 c) => new(a.BB - c.BB, a.BW - c.BW, a.WW - c.WW);
    public static Sym2 operator *(double s, Sym2 a) => new(s * a.BB, s * a.BW, s * a.WW);

    /// <summary>The outer product v vᵀ.</summary>
    public static Sym2 Outer(Vec2 v) => new(v.B * v.B, v.B * v.W, v.W * v.W);

    /// <summary>M v.</summary>
    public Vec2 Multiply(Vec2 v) => new(BB * v.B + BW * v.W, BW * v.B + WW * v.W);

    public double Determinant => BB * WW - BW * BW;

    /// <summary>The two eigenvalues, smaller first.</summary>
    public (double Min, double Max) Eigenvalues
    {
        get
        {
            double mean = 0.5 * (BB + WW), half = 0.5 * (BB - WW);
            double radius = Math.Sqrt(half * half + BW * BW);
            return (mean - radius, mean + radius);
        }
    }

    /// <summary>
    /// (M + λI)⁻¹ v by the closed-form 2×2 inverse. Returns a non-finite vector when M + λI is singular
    /// (the path runner stops on it); an indefinite M + λI is solved as it is (no sign correction).
    /// </summary>
    public Vec2 SolveDamped(Vec2 v, double damping)
    {
        double a = BB + damping, d = WW + damping, c = BW;
        double det = a * d - c * c;
        if (det == 0 || !double.IsFinite(det)) return new Vec2(double.NaN, double.NaN);
        return new Vec2((d * v.B - c * v.W) / det, (a * v.W - c * v.B) / det);
    }

    public override string ToString() => FormattableString.Invariant($"[[{BB:G6}, {BW:G6}], [{BW:G6}, {WW:G6}]]");
}
