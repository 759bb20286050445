using System.Globalization;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// Hyperparameters of the Kronecker-factored blocks (<see cref="KfacBlock"/>, <see cref="EkfacBlock"/>).
/// Defaults: β = 0.95, factors every 3 steps, K-FAC's inverses every 10 steps and EKFAC's eigenbasis every 20,
/// Cholesky inverses, factored damping (chosen by measurement: docs/PERFORMANCE.md, docs/DEFAULTS.md).
/// </summary>
/// <remarks>
/// Schedules use the optimisation step index s passed to <c>Update(statistics, s)</c> (from 0): the factors are
/// refreshed when s mod T_f = 0, the inverses (or eigenbases) when s mod T_inv = 0. The very first update always
/// refreshes both, whatever s is.
/// </remarks>
public sealed record KfacOptions
{
    /// <summary>
    /// β in the running average X ← β X + (1 − β) X_batch of each factor (and of EKFAC's scaling S); the first
    /// update takes X_batch as it is. Range [0, 1); default 0.95. β = 0 keeps only the latest batch.
    /// </summary>
    public double FactorDecay { get; init; } = 0.95;

    /// <summary>
    /// T_f ≥ 1: the factors (and EKFAC's S) absorb statistics on steps with s mod T_f = 0 (EKFAC's S also restarts from
    /// the step's batch whenever its eigenbasis is recomputed). Default 3: the factor GEMMs
    /// (2m(in'² + out²) flops per layer, a large share of a K-FAC step) are paid on a third of the steps, with test
    /// losses and accuracies on weather, wine and a Fashion-MNIST subset equivalent to T_f = 1 (docs/DEFAULTS.md). Set 1
    /// where the statistics of every batch must count (e.g. a preconditioner built from the step's own batch).
    /// </summary>
    public int FactorUpdatePeriod { get; init; } = 3;

    /// <summary>
    /// T_inv ≥ 1: inverses (Cholesky) or eigendecompositions are recomputed on steps with s mod T_inv = 0; in between,
    /// Precondition uses the cached ones. A damped inverse is also rebuilt when the damping changes. Null (the default)
    /// takes the block's own default: <see cref="DefaultInverseUpdatePeriod"/> (10) for K-FAC, whose inverses then cost
    /// a small share of a step on MLP 784-512-512-10 at batch 256 instead of most of it (docs/PERFORMANCE.md), and
    /// <see cref="DefaultEigenbasisUpdatePeriod"/> (20) for EKFAC, whose re-estimated scaling S keeps a staler
    /// eigenbasis accurate (George et al. 2018 §3.2) and whose eigendecompositions run far below the GEMM rate
    /// (docs/DEFAULTS.md: 20 as good as 10 on weather, wine and Fashion-MNIST). Under a <see cref="BlockDiagonalCurvature"/>
    /// (the preconditioner's K-FAC and EKFAC) a refresh's factorisations of every layer run side by side when torch has
    /// n ≥ 2 threads: on n background threads of the library, each with one torch thread, while the calling thread waits
    /// (docs/ARCHITECTURE.md, docs/PERFORMANCE.md "Factorisations side by side").
    /// </summary>
    public int? InverseUpdatePeriod { get; init; }

    /// <summary>K-FAC's T_inv when <see cref="InverseUpdatePeriod"/> is null: 10.</summary>
    public const int DefaultInverseUpdatePeriod = 10;

    /// <summary>EKFAC's T_inv (eigenbasis period) when <see cref="InverseUpdatePeriod"/> is null: 20.</summary>
    public const int DefaultEigenbasisUpdatePeriod = 20;

    /// <summary>These options with <see cref="InverseUpdatePeriod"/> set: kept when given, else <paramref name="blockDefault"/>.</summary>
    internal KfacOptions WithInversePeriod(int blockDefault) =>
        InverseUpdatePeriod is null ? this with { InverseUpdatePeriod = blockDefault } : this;

    /// <summary>
    /// How K-FAC inverts its factors; default <see cref="KfacInverseMethod.Cholesky"/> (about (4/3)d³ flops per d × d
    /// factor against ≈ 4.7d³ for eigh's divide and conquer with eigenvectors, which also runs further below the GEMM
    /// rate). EKFAC always uses eigh.
    /// </summary>
    public KfacInverseMethod InverseMethod { get; init; } = KfacInverseMethod.Cholesky;

    /// <summary>
    /// How K-FAC damps; default <see cref="KfacDampingMode.Factored"/>. <see cref="KfacDampingMode.Eigenbasis"/> requires
    /// <see cref="KfacInverseMethod.Eigen"/> (for K-FAC). EKFAC damps 1 / (S + λ) with Eigenbasis and adds K-FAC's factored terms with Factored.
    /// </summary>
    public KfacDampingMode DampingMode { get; init; } = KfacDampingMode.Factored;

    /// <summary>How layers applied at several positions per example are factored; default <see cref="KfacWeightSharing.Expand"/>.</summary>
    public KfacWeightSharing WeightSharing { get; init; } = KfacWeightSharing.Expand;

    /// <summary>
    /// Precision of the factor GEMMs for float32 statistics; default <see cref="KfacFactorPrecision.Model"/> (float32).
    /// <see cref="KfacFactorPrecision.Bfloat16"/> halves their cost on CPUs with bfloat16 instructions (docs/PERFORMANCE.md).
    /// </summary>
    public KfacFactorPrecision FactorPrecision { get; init; } = KfacFactorPrecision.Model;

    /// <summary>
    /// Precision of the solve's products for float32 factors; default <see cref="KfacInversePrecision.Model"/> (float32).
    /// <see cref="KfacInversePrecision.Bfloat16"/> applies K-FAC's inverses and EKFAC's eigenbases by bfloat16 GEMMs, 0.50–0.64
    /// of the float32 time on CPUs with bfloat16 instructions (docs/PERFORMANCE.md). Read by K-FAC and EKFAC blocks
    /// (also those <see cref="CurvatureStructure.Auto"/> chooses); Hessian-free's K-FAC solver preconditioner reads
    /// <see cref="HessianFree.HessianFreeOptions.KfacPreconditionerOptions"/> instead.
    /// </summary>
    public KfacInversePrecision InversePrecision { get; init; } = KfacInversePrecision.Model;

    /// <summary>
    /// Largest dense factor side (in' or out) a layer may have, ≥ 1; default 16 384 (a 16 384 × 16 384 float32 factor
    /// takes 1 GiB, its inverse as much again). A wider layer (a large vocabulary's output layer) is refused when the
    /// preconditioner is built, with the layer named, instead of running out of memory at the first inverse. An
    /// Embedding's A is a vector under K-FAC and EKFAC (<see cref="DiagonalActivation"/>): only its G (d × d) counts;
    /// K-BFGS keeps a dense A, so there V counts too.
    /// </summary>
    public int MaxFactorDimension { get; init; } = 16384;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> on an invalid value; returns this for chaining.</summary>
    public KfacOptions Validate()
    {
        if (MaxFactorDimension < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxFactorDimension), MaxFactorDimension, $"MaxFactorDimension must be ≥ 1, got {MaxFactorDimension}");
        if (!(FactorDecay >= 0 && FactorDecay < 1))
            throw new ArgumentOutOfRangeException(nameof(FactorDecay), FactorDecay, $"FactorDecay must be in [0, 1), got {FactorDecay}");
        if (FactorUpdatePeriod < 1)
            throw new ArgumentOutOfRangeException(nameof(FactorUpdatePeriod), FactorUpdatePeriod, $"FactorUpdatePeriod must be ≥ 1, got {FactorUpdatePeriod}");
        if (InverseUpdatePeriod is < 1)
            throw new ArgumentOutOfRangeException(nameof(InverseUpdatePeriod), InverseUpdatePeriod, $"InverseUpdatePeriod must be ≥ 1, got {InverseUpdatePeriod}");
        if (!Enum.IsDefined(InverseMethod))
            throw new ArgumentOutOfRangeException(nameof(InverseMethod), InverseMethod, "unknown inverse method");
        if (!Enum.IsDefined(WeightSharing))
            throw new ArgumentOutOfRangeException(nameof(WeightSharing), WeightSharing, "unknown weight-sharing mode");
        if (!Enum.IsDefined(FactorPrecision))
            throw new ArgumentOutOfRangeException(nameof(FactorPrecision), FactorPrecision, "unknown factor precision");
        if (!Enum.IsDefined(InversePrecision))
            throw new ArgumentOutOfRangeException(nameof(InversePrecision), InversePrecision, "unknown inverse precision");
        if (!Enum.IsDefined(DampingMode))
            throw new ArgumentOutOfRangeException(nameof(DampingMode), DampingMode, "unknown damping mode");
        if (DampingMode == KfacDampingMode.Eigenbasis && InverseMethod != KfacInverseMethod.Eigen)
            throw new ArgumentOutOfRangeException(nameof(DampingMode), DampingMode,
                "DampingMode Eigenbasis (1 / (eᴳᵢ eᴬⱼ + λ)) needs the factors' eigendecompositions: set InverseMethod = Eigen (natgrad: --kfac-inverse eigen), or use DampingMode Factored with Cholesky");
        return this;
    }

    /// <summary>True when the factors absorb statistics at <paramref name="step"/>.</summary>
    internal bool FactorsDue(long step) => step % FactorUpdatePeriod == 0;

    /// <summary>True when inverses or eigenbases are recomputed at <paramref name="step"/>.</summary>
    internal bool InverseDue(long step) => step % InversePeriod == 0;

    /// <summary>T_inv: <see cref="InverseUpdatePeriod"/>, or K-FAC's default when it is null (blocks resolve it when built).</summary>
    internal int InversePeriod => InverseUpdatePeriod ?? DefaultInverseUpdatePeriod;

    /// <summary>Every hyperparameter, sorted by name.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"KfacOptions {{ DampingMode = {DampingMode}, FactorDecay = {FactorDecay}, FactorUpdatePeriod = {FactorUpdatePeriod}, " +
        $"InverseMethod = {InverseMethod}, InverseUpdatePeriod = {InverseUpdatePeriod?.ToString(CultureInfo.InvariantCulture) ?? "default"}, WeightSharing = {WeightSharing} }}");
}
