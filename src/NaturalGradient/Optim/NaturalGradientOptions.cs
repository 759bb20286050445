using NaturalGradient.Damping;
using NaturalGradient.Diagnostics;
using NaturalGradient.Preconditioning;

namespace NaturalGradient.Optim;

/// <summary>Options of <see cref="NaturalGradientDescent"/>: the preconditioner plus the update rule.</summary>
public sealed record NaturalGradientOptions
{
    /// <summary>What curvature to use and how to estimate it.</summary>
    public PreconditionerOptions Preconditioner { get; init; } = new();

    /// <summary>Learning rate η; default 0.1.</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Heavy-ball momentum μ on the natural-gradient direction; default 0.</summary>
    public double Momentum { get; init; }

    /// <summary>L2 weight decay added to the gradient before preconditioning (seed 000 §4.3); default 0.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Constant damping or Levenberg–Marquardt adaptation; default constant.</summary>
    public DampingSchedule DampingSchedule { get; init; } = DampingSchedule.Constant;

    /// <summary>
    /// Bound κ on the predicted KL of each step (K-FAC's norm constraint), measured as <see cref="KlClipForm"/> says;
    /// null = none. The gradient form's η²Δᵀg is at least twice the predicted KL (plus the damping's share), so it binds
    /// at smaller steps than the step form for the same κ: natgrad's K-FAC and EKFAC use κ = 1e-2 with it where κ = 1e-3
    /// suited the step form (docs/DEFAULTS.md).
    /// </summary>
    public double? KlClip { get; init; }

    /// <summary>
    /// How <see cref="KlClip"/> measures a step; default <see cref="Optim.KlClipForm.StepQuadraticForm"/>: the predicted
    /// KL ½uᵀMu of the applied step, momentum included (one metric product per step when a clip is set).
    /// <see cref="Optim.KlClipForm.PreconditionedGradient"/> (Ba et al. 2017, kfac-pytorch's <c>kl_clip</c>) bounds
    /// η²Δᵀg of the preconditioned gradient before momentum, one dot product with what the solve has (where K-FAC, EKFAC or
    /// TENGraD form Δ from the rows, Δᵀg comes from the route's own products and g is not formed; with bfloat16 solves,
    /// only from K-FAC's factored damping): natgrad's K-FAC and EKFAC use it (κ = 1e-2, momentum 0; it matched the step
    /// form at κ = 1e-3 on weather, wine and a Fashion-MNIST subset, docs/DEFAULTS.md). With momentum μ it does not
    /// bound the applied step, which can reach 1/(1 − μ) times the clipped Δ: in the accuracy benchmark (momentum 0.9,
    /// κ = 1e-3; docs/PERFORMANCE.md) it suited K-FAC, while Hessian-free diverged with it and trained with the step form.
    /// </summary>
    public KlClipForm KlClipForm { get; init; } = KlClipForm.StepQuadraticForm;

    /// <summary>
    /// What each step measures for its <see cref="StepReport"/>; default <see cref="DiagnosticsLevel.Basic"/> (no added
    /// cost). <see cref="DiagnosticsLevel.Detailed"/> implies <see cref="ReportPredictedKl"/>.
    /// </summary>
    public DiagnosticsLevel Diagnostics { get; init; } = DiagnosticsLevel.Basic;

    /// <summary>
    /// Compute the predicted KL ½ uᵀMu of every step for the report even when neither <see cref="KlClip"/> nor
    /// Levenberg–Marquardt damping needs it (one extra metric product per step); default false.
    /// </summary>
    public bool ReportPredictedKl { get; init; }

    public NaturalGradientOptions Validate()
    {
        Preconditioner.Validate();
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be a finite number > 0");
        if (!(Momentum >= 0 && Momentum < 1))
            throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "Momentum must be in [0, 1)");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay))
            throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must be a finite number ≥ 0");
        if (!Enum.IsDefined(DampingSchedule))
            throw new ArgumentOutOfRangeException(nameof(DampingSchedule), DampingSchedule, "DampingSchedule must be Constant or LevenbergMarquardt");
        if (!Enum.IsDefined(Diagnostics))
            throw new ArgumentOutOfRangeException(nameof(Diagnostics), Diagnostics, "Diagnostics must be Basic or Detailed");
        if (!Enum.IsDefined(KlClipForm))
            throw new ArgumentOutOfRangeException(nameof(KlClipForm), KlClipForm, "KlClipForm must be StepQuadraticForm or PreconditionedGradient");
        if (KlClip is { } k && !(k > 0))
            throw new ArgumentOutOfRangeException(nameof(KlClip), k, "KlClip must be > 0");
        if (Preconditioner.Structure == Curvature.CurvatureStructure.Kbfgs && Preconditioner.Fisher != Fisher.FisherKind.Empirical)
            throw new ArgumentOutOfRangeException(nameof(Preconditioner.Fisher), Preconditioner.Fisher,
                $"kbfgs builds its secant pairs from loss gradients: it needs Fisher = FisherKind.Empirical, got {Preconditioner.Fisher}");
        if (DampingSchedule == DampingSchedule.LevenbergMarquardt && !(Preconditioner.Damping > 0))
            throw new ArgumentOutOfRangeException(nameof(Preconditioner.Damping), Preconditioner.Damping, "Levenberg–Marquardt damping needs an initial Damping > 0");
        return this;
    }

    public override string ToString() =>
        $"DampingSchedule={DampingSchedule}, Diagnostics={Diagnostics}, KlClip={KlClip?.ToString() ?? "none"}, KlClipForm={KlClipForm}, LearningRate={LearningRate}, " +
        $"Momentum={Momentum}, Preconditioner=[{Preconditioner}], ReportPredictedKl={ReportPredictedKl}, WeightDecay={WeightDecay}";
}

/// <summary>How the KL clip (<see cref="NaturalGradientOptions.KlClip"/>) measures a step.</summary>
public enum KlClipForm
{
    /// <summary>
    /// The predicted KL ½ uᵀMu of the applied step u = −η·buf (after momentum), scaled down to κ: one metric product per
    /// step (for K-FAC two GEMMs per layer, as many as the solve itself).
    /// </summary>
    StepQuadraticForm,

    /// <summary>
    /// Ba, Grosse &amp; Martens (2017, eq 11), as kfac-pytorch's <c>kl_clip</c>: Δ ← ν Δ before momentum, with
    /// ν = min(1, √(κ / (η² Σ_l Δ_lᵀ g_l))). Since Δ = (M + λI)⁻¹g, Δᵀg = Δᵀ(M + λI)Δ ≥ ΔᵀMΔ, so η² Δᵀg bounds twice
    /// the predicted KL of the momentum-free step from above. It reads only what the solve already has (one dot
    /// product per layer and one host read): no metric product.
    /// </summary>
    PreconditionedGradient,
}
