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

    /// <summary>Bound κ on the predicted KL ½ uᵀMu of each applied step u (K-FAC's norm constraint); null = none.</summary>
    public double? KlClip { get; init; }

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
        if (!Enum.IsDefined(Diagnostics))
            throw new ArgumentOutOfRangeException(nameof(Diagnostics), Diagnostics, "Diagnostics must be Basic or Detailed");
        if (KlClip is { } k && !(k > 0))
            throw new ArgumentOutOfRangeException(nameof(KlClip), k, "KlClip must be > 0");
        if (DampingSchedule == DampingSchedule.LevenbergMarquardt && !(Preconditioner.Damping > 0))
            throw new ArgumentOutOfRangeException(nameof(Preconditioner.Damping), Preconditioner.Damping, "Levenberg–Marquardt damping needs an initial Damping > 0");
        return this;
    }

    public override string ToString() =>
        $"DampingSchedule={DampingSchedule}, Diagnostics={Diagnostics}, KlClip={KlClip?.ToString() ?? "none"}, LearningRate={LearningRate}, " +
        $"Momentum={Momentum}, Preconditioner=[{Preconditioner}], ReportPredictedKl={ReportPredictedKl}, WeightDecay={WeightDecay}";
}
