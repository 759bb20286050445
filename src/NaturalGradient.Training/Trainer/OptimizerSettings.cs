using NaturalGradient.Damping;
using NaturalGradient.Fisher;

namespace NaturalGradient.Training;

/// <summary>
/// Every hyper-parameter of the training methods in <see cref="OptimizerCatalog"/>. A method reads the fields it
/// uses (<see cref="MethodDefaults.Reads"/>) and ignores the others. The property initialisers are neutral values;
/// <see cref="For"/> gives a method's measured defaults (docs/DEFAULTS.md). Call <see cref="Validate"/> before use.
/// </summary>
public sealed record OptimizerSettings
{
    /// <summary>The measured defaults of a built-in method (see <see cref="MethodDefaults.For"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unknown name.</exception>
    public static OptimizerSettings For(string name) => MethodDefaults.For(name);

    /// <summary>Catalog name of the method (sgd, adam, exact, block, tengrad, diag, kfac, ekfac, hf); default "sgd".</summary>
    public string Name { get; init; } = "sgd";

    /// <summary>Base learning rate (step size) η &gt; 0; default 0.01.</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>Heavy-ball momentum in [0, 1); default 0.9. Adam uses <see cref="Beta1"/> instead.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>L2 weight decay ≥ 0 added to the gradient (coupled, as torch.optim does); default 0.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Per-epoch learning-rate decay applied by the trainer; default none.</summary>
    public LrSchedule LrDecay { get; init; } = LrSchedule.None;

    /// <summary>Adam's first-moment decay β₁ in [0, 1); default 0.9.</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>Adam's second-moment decay β₂ in [0, 1); default 0.999.</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>Adam's ε &gt; 0 added to the denominator; default 1e-8.</summary>
    public double Eps { get; init; } = 1e-8;

    /// <summary>Tikhonov damping λ &gt; 0 of the curvature (initial value under Levenberg–Marquardt); default 1e-3.</summary>
    public double Damping { get; init; } = 1e-3;

    /// <summary>How λ evolves; default <see cref="Damping.DampingSchedule.Constant"/>.</summary>
    public DampingSchedule DampingSchedule { get; init; } = DampingSchedule.Constant;

    /// <summary>Which Fisher the curvature estimates; default <see cref="FisherKind.Empirical"/>.</summary>
    public FisherKind Fisher { get; init; } = FisherKind.Empirical;

    /// <summary>Sampled targets per input for the Monte-Carlo Fisher, ≥ 1; default 1.</summary>
    public int McSamples { get; init; } = 1;

    /// <summary>Uncentred Fisher, or TONGA's centred gradient covariance (seed 001 §4.1; exact, block, tengrad); default uncentred.</summary>
    public MetricForm MetricForm { get; init; } = MetricForm.Uncentered;

    /// <summary>Which examples the curvature statistics come from; default <see cref="Training.MetricSource.SameBatch"/>.</summary>
    public MetricSource MetricSource { get; init; } = MetricSource.SameBatch;

    /// <summary>Inputs per step for <see cref="Training.MetricSource.Unlabeled"/>, ≥ 1; null (default) = the batch size.</summary>
    public int? UnlabeledCount { get; init; }

    /// <summary>
    /// Recompute inverses (or eigenbases) every this many steps, ≥ 1; null (default) = the block's default
    /// (<see cref="Curvature.Kfac.KfacOptions.InverseUpdatePeriod"/>: 10 for K-FAC, 20 for EKFAC; docs/DEFAULTS.md).
    /// </summary>
    public int? InverseUpdatePeriod { get; init; }

    /// <summary>
    /// Update curvature factors / statistics every this many steps, ≥ 1; default the core's
    /// (<see cref="Curvature.Kfac.KfacOptions.FactorUpdatePeriod"/>: 3, docs/DEFAULTS.md).
    /// </summary>
    public int FactorUpdatePeriod { get; init; } = new Curvature.Kfac.KfacOptions().FactorUpdatePeriod;

    /// <summary>K-FAC inverse by Cholesky (default) or eigendecomposition.</summary>
    public Curvature.Kfac.KfacInverseMethod KfacInverse { get; init; } = Curvature.Kfac.KfacInverseMethod.Cholesky;

    /// <summary>
    /// Precision of the K-FAC/EKFAC factor GEMMs for float32 models: the model's (default) or bfloat16
    /// (<see cref="Curvature.Kfac.KfacFactorPrecision.Bfloat16"/>: faster on CPUs with bfloat16 instructions).
    /// </summary>
    public Curvature.Kfac.KfacFactorPrecision KfacFactorPrecision { get; init; } = Curvature.Kfac.KfacFactorPrecision.Model;

    /// <summary>
    /// Precision of the K-FAC/EKFAC solve's products for float32 models: the model's (default) or bfloat16
    /// (<see cref="Curvature.Kfac.KfacInversePrecision.Bfloat16"/>: bfloat16 copies of the inverses and eigenbases; faster on
    /// CPUs with bfloat16 instructions).
    /// </summary>
    public Curvature.Kfac.KfacInversePrecision KfacInversePrecision { get; init; } = Curvature.Kfac.KfacInversePrecision.Model;

    /// <summary>K-FAC damping: π-adjusted factored Tikhonov (default) or exact in the eigenbasis (needs the eigen inverse).</summary>
    public Curvature.Kfac.KfacDampingMode KfacDamping { get; init; } = Curvature.Kfac.KfacDampingMode.Factored;

    /// <summary>
    /// Data-parallel K-FAC/EKFAC (under mpirun -np N &gt; 1): which rank does each layer's inverse work and what it
    /// broadcasts (docs/DISTRIBUTED.md); default <see cref="Training.KfacDistribution.InverseBroadcast"/>. No effect in one process.
    /// </summary>
    public KfacDistribution KfacDistribution { get; init; } = KfacDistribution.InverseBroadcast;

    /// <summary>
    /// Data-parallel K-FAC/EKFAC: allreduce the Kronecker factors every this many steps (≥ 1; inverse steps always
    /// sync, so the inverses see the exact factors); default 1. No effect in one process or with the replicated distribution.
    /// </summary>
    public int FactorSyncPeriod { get; init; } = 1;

    /// <summary>Exponential moving-average decay of curvature factors in [0, 1): new = decay·old + (1 − decay)·batch; default 0.95.</summary>
    public double FactorDecay { get; init; } = 0.95;

    /// <summary>Scale the update down so its predicted KL stays ≤ this value (&gt; 0); null (default) = no clipping.</summary>
    public double? KlClip { get; init; }

    /// <summary>
    /// How the KL clip measures a step: the predicted KL ½uᵀMu of the applied step (default, as the core's
    /// <see cref="Optim.NaturalGradientOptions.KlClipForm"/>; one metric product per step) or η²Δᵀg of the
    /// preconditioned gradient before momentum (Ba et al. 2017, kfac-pytorch's <c>kl_clip</c>; no metric product; the
    /// default of natgrad's kfac and ekfac, <see cref="MethodDefaults"/>).
    /// </summary>
    public Optim.KlClipForm KlClipForm { get; init; } = Optim.KlClipForm.StepQuadraticForm;

    /// <summary>
    /// Compute the predicted KL ½uᵀMu of every natural-gradient step for the step metrics even without a KL clip or
    /// Levenberg–Marquardt damping (one extra metric product per step); default false. Set by <c>--tensorboard</c>.
    /// </summary>
    public bool ReportPredictedKl { get; init; }

    /// <summary>Solver of the Hessian-free method; default <see cref="Training.HfSolver.Cg"/>.</summary>
    public HfSolver HfSolver { get; init; } = HfSolver.Cg;

    /// <summary>Maximum solver iterations per Hessian-free step, ≥ 1; default 50.</summary>
    public int HfMaxIterations { get; init; } = 50;

    /// <summary>Precondition the Hessian-free solver with the diagonal Fisher (default off).</summary>
    public bool HfDiagonalPreconditioner { get; init; }

    /// <summary>Precondition the Hessian-free solver with K-FAC's damped inverse (default off; excludes the diagonal one).</summary>
    public bool HfKfacPreconditioner { get; init; }

    /// <summary>Relative residual at which the Hessian-free solver stops, &gt; 0; default 1e-4.</summary>
    public double HfTolerance { get; init; } = 1e-4;

    /// <summary>
    /// K-BFGS: how many damped secant pairs the L-BFGS inverse of each G factor keeps (K-BFGS(L)), ≥ 0; 0 keeps a dense
    /// out × out inverse updated by BFGS (K-BFGS). Default 0.
    /// </summary>
    public int KbfgsMemory { get; init; }

    /// <summary>Krylov subspace descent: k, the Krylov vectors g, Gg, …, G^(k−1)g of each step's basis, ≥ 1; default 8.</summary>
    public int KsdDimension { get; init; } = 8;

    /// <summary>
    /// Every this many steps (≥ 0; 0 = never, the default) the natural-gradient methods measure, on a fixed probe batch,
    /// each layer's approximation error against the exact block and the cosine of the directions (approximation.csv).
    /// </summary>
    public int DiagnosticsEvery { get; init; }

    /// <summary>Largest parameter count for which the dense exact natural gradient may run, ≥ 1; default 20000.</summary>
    public int MaxExactParameters { get; init; } = 20000;

    /// <summary>Checks every value, and combinations that cannot work.</summary>
    /// <exception cref="ArgumentOutOfRangeException">
    /// Names the property (as the parameter name and at the start of the message) and the offending value.
    /// </exception>
    public void Validate()
    {
        OptionGuard.NotEmpty(Name, nameof(Name));
        OptionGuard.Positive(LearningRate, nameof(LearningRate));
        OptionGuard.UnitInterval(Momentum, nameof(Momentum));
        OptionGuard.NonNegative(WeightDecay, nameof(WeightDecay));
        ArgumentNullException.ThrowIfNull(LrDecay, nameof(LrDecay));
        LrDecay.Validate();
        OptionGuard.UnitInterval(Beta1, nameof(Beta1));
        OptionGuard.UnitInterval(Beta2, nameof(Beta2));
        OptionGuard.Positive(Eps, nameof(Eps));
        OptionGuard.Positive(Damping, nameof(Damping));
        OptionGuard.Defined(DampingSchedule, nameof(DampingSchedule));
        OptionGuard.Defined(Fisher, nameof(Fisher));
        OptionGuard.AtLeast(McSamples, 1, nameof(McSamples));
        OptionGuard.Defined(MetricSource, nameof(MetricSource));
        if (UnlabeledCount is { } u) OptionGuard.AtLeast(u, 1, nameof(UnlabeledCount));
        if (MetricSource == MetricSource.Unlabeled && Fisher == FisherKind.Empirical)
            throw new ArgumentOutOfRangeException(nameof(MetricSource), MetricSource,
                $"{nameof(MetricSource)} Unlabeled needs Fisher MonteCarlo or Exact (the empirical Fisher needs labels)");
        if (InverseUpdatePeriod is { } inversePeriod) OptionGuard.AtLeast(inversePeriod, 1, nameof(InverseUpdatePeriod));
        OptionGuard.AtLeast(FactorUpdatePeriod, 1, nameof(FactorUpdatePeriod));
        OptionGuard.AtLeast(FactorSyncPeriod, 1, nameof(FactorSyncPeriod));
        if (!Enum.IsDefined(KfacDistribution)) throw new ArgumentOutOfRangeException(nameof(KfacDistribution), KfacDistribution, "unknown K-FAC distribution");
        OptionGuard.UnitInterval(FactorDecay, nameof(FactorDecay));
        if (KlClip is { } k) OptionGuard.Positive(k, nameof(KlClip));
        OptionGuard.Defined(HfSolver, nameof(HfSolver));
        OptionGuard.AtLeast(HfMaxIterations, 1, nameof(HfMaxIterations));
        if (HfKfacPreconditioner && HfDiagonalPreconditioner)
            throw new ArgumentOutOfRangeException(nameof(HfKfacPreconditioner), HfKfacPreconditioner,
                $"{nameof(HfKfacPreconditioner)} and {nameof(HfDiagonalPreconditioner)} exclude each other: choose one solver preconditioner");
        OptionGuard.Positive(HfTolerance, nameof(HfTolerance));
        OptionGuard.AtLeast(MaxExactParameters, 1, nameof(MaxExactParameters));
        OptionGuard.AtLeast(KbfgsMemory, 0, nameof(KbfgsMemory));
        OptionGuard.AtLeast(KsdDimension, 1, nameof(KsdDimension));
        OptionGuard.AtLeast(DiagnosticsEvery, 0, nameof(DiagnosticsEvery));
    }

    /// <summary>Every resolved value, sorted by name: "OptimizerSettings { Beta1 = 0.9, … }".</summary>
    public override string ToString() => OptionGuard.Describe(this);
}
