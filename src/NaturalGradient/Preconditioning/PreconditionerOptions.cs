using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;

namespace NaturalGradient.Preconditioning;

/// <summary>What the natural-gradient preconditioner computes. Every property has a documented default.</summary>
public sealed record PreconditionerOptions
{
    /// <summary>Curvature approximation; default <see cref="CurvatureStructure.BlockDiagonal"/>.</summary>
    public CurvatureStructure Structure { get; init; } = CurvatureStructure.BlockDiagonal;

    /// <summary>Which Fisher the statistics estimate; default <see cref="FisherKind.Empirical"/> (seed 000's choice).</summary>
    public FisherKind Fisher { get; init; } = FisherKind.Empirical;

    /// <summary>Sampled targets per input for <see cref="FisherKind.MonteCarlo"/>; default 1.</summary>
    public int MonteCarloSamples { get; init; } = 1;

    /// <summary>Uncentred Fisher or TONGA's centred covariance (exact, block and TENGraD structures); default uncentred.</summary>
    public MetricForm Form { get; init; } = MetricForm.Uncentered;

    /// <summary>Damping λ in (M + λI)Δ = g; default 1e-3. Must be &gt; 0 for TENGraD.</summary>
    public double Damping { get; init; } = 1e-3;

    /// <summary>Largest covered parameter count exact NGD accepts; default 20 000.</summary>
    public long MaxExactParameters { get; init; } = 20_000;

    /// <summary>K-FAC / EKFAC settings (factor decay, update periods, inverse method, damping mode).</summary>
    public KfacOptions Kfac { get; init; } = new();

    /// <summary>K-BFGS settings (L-BFGS memory, Powell threshold, activation-factor decay).</summary>
    public KbfgsOptions Kbfgs { get; init; } = new();

    /// <summary>Seed of the generator that samples Monte-Carlo targets; default 0.</summary>
    public long Seed { get; init; }

    /// <summary>Settings of <see cref="CurvatureStructure.HessianFree"/> (solver, iterations, tolerance, warm start, preconditioning).</summary>
    public HessianFreeOptions HessianFree { get; init; } = new();

    /// <summary>Only layers whose dotted path passes this filter are covered; null = all Linear/Conv2d layers.</summary>
    public Func<string, bool>? IncludeLayer { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    public PreconditionerOptions Validate()
    {
        if (MonteCarloSamples < 1)
            throw new ArgumentOutOfRangeException(nameof(MonteCarloSamples), MonteCarloSamples, "MonteCarloSamples must be ≥ 1");
        if (!(Damping >= 0) || double.IsInfinity(Damping))
            throw new ArgumentOutOfRangeException(nameof(Damping), Damping, "Damping must be a finite number ≥ 0");
        if (Structure is CurvatureStructure.Tengrad or CurvatureStructure.Kfac or CurvatureStructure.Ekfac
                or CurvatureStructure.Kbfgs or CurvatureStructure.Auto && !(Damping > 0))
            throw new ArgumentOutOfRangeException(nameof(Damping), Damping, $"{Structure} needs Damping > 0");
        if (Structure is CurvatureStructure.Kfac or CurvatureStructure.Auto) Kfac.Validate();
        if (Structure == CurvatureStructure.Ekfac) (Kfac with { InverseMethod = KfacInverseMethod.Eigen }).Validate();   // EKFAC always decomposes
        if (Structure == CurvatureStructure.Kbfgs) Kbfgs.Validate();
        if (MaxExactParameters < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxExactParameters), MaxExactParameters, "MaxExactParameters must be ≥ 1");
        if (Structure == CurvatureStructure.HessianFree)
        {
            ArgumentNullException.ThrowIfNull(HessianFree, nameof(HessianFree));
            HessianFree.Validate();
        }
        if (Form == MetricForm.Centered && Structure is not (CurvatureStructure.Exact or CurvatureStructure.BlockDiagonal or CurvatureStructure.Tengrad))
            throw new ArgumentOutOfRangeException(nameof(Form), Form, "the centred covariance metric is available for the exact, block and tengrad structures only");
        return this;
    }

    public override string ToString() =>
        $"Damping={Damping}, Fisher={Fisher}, Form={Form}, HessianFree=[{HessianFree}], MaxExactParameters={MaxExactParameters}, " +
        $"Kbfgs=[{Kbfgs}], Kfac=[{Kfac}], MonteCarloSamples={MonteCarloSamples}, Seed={Seed}, Structure={Structure}";
}
