using NaturalGradient.Damping;
using NaturalGradient.Fisher;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Parsing;

/// <summary>The command line's spellings of the library's enums. Each throws <see cref="FormatException"/> for other text.</summary>
internal static class CliChoices
{
    public static Damping.DampingSchedule DampingSchedule(string text) => Lower(text) switch
    {
        "constant" => Damping.DampingSchedule.Constant,
        "lm" or "levenberg-marquardt" => Damping.DampingSchedule.LevenbergMarquardt,
        _ => throw Bad(text, "constant, lm"),
    };

    public static FisherKind Fisher(string text) => Lower(text) switch
    {
        "empirical" => FisherKind.Empirical,
        "mc" or "monte-carlo" => FisherKind.MonteCarlo,
        "exact" => FisherKind.Exact,
        _ => throw Bad(text, "empirical, mc, exact"),
    };

    public static MetricForm MetricForm(string text) => Lower(text) switch
    {
        "fisher" or "uncentered" => NaturalGradient.Fisher.MetricForm.Uncentered,
        "covariance" or "centered" => NaturalGradient.Fisher.MetricForm.Centered,
        _ => throw Bad(text, "fisher, covariance"),
    };

    public static MetricSource Metric(string text) => Lower(text) switch
    {
        "same" => MetricSource.SameBatch,
        "other" => MetricSource.OtherBatch,
        "unlabeled" => MetricSource.Unlabeled,
        _ => throw Bad(text, "same, other, unlabeled"),
    };

    public static Curvature.Kfac.KfacInverseMethod KfacInverse(string text) => Lower(text) switch
    {
        "eigen" => Curvature.Kfac.KfacInverseMethod.Eigen,
        "cholesky" => Curvature.Kfac.KfacInverseMethod.Cholesky,
        _ => throw Bad(text, "eigen, cholesky"),
    };

    public static Curvature.Kfac.KfacFactorPrecision FactorPrecision(string text) => Lower(text) switch
    {
        "model" => Curvature.Kfac.KfacFactorPrecision.Model,
        "bfloat16" or "bf16" => Curvature.Kfac.KfacFactorPrecision.Bfloat16,
        _ => throw Bad(text, "model, bfloat16"),
    };

    public static Curvature.Kfac.KfacInversePrecision InversePrecision(string text) => Lower(text) switch
    {
        "model" => Curvature.Kfac.KfacInversePrecision.Model,
        "bfloat16" or "bf16" => Curvature.Kfac.KfacInversePrecision.Bfloat16,
        _ => throw Bad(text, "model, bfloat16"),
    };

    public static Curvature.Kfac.KfacDampingMode KfacDamping(string text) => Lower(text) switch
    {
        "factored" => Curvature.Kfac.KfacDampingMode.Factored,
        "eigenbasis" => Curvature.Kfac.KfacDampingMode.Eigenbasis,
        _ => throw Bad(text, "factored, eigenbasis"),
    };

    public static KfacDistribution KfacDistribution(string text) => Lower(text) switch
    {
        "inverse" => Training.KfacDistribution.InverseBroadcast,
        "gradient" => Training.KfacDistribution.GradientBroadcast,
        "replicated" => Training.KfacDistribution.Replicated,
        _ => throw Bad(text, "inverse, gradient, replicated"),
    };

    public static Optim.KlClipForm KlClipForm(string text) => Lower(text) switch
    {
        "step" => Optim.KlClipForm.StepQuadraticForm,
        "gradient" => Optim.KlClipForm.PreconditionedGradient,
        _ => throw Bad(text, "step, gradient"),
    };

    public static HfSolver HfSolver(string text) => Lower(text) switch
    {
        "cg" => Training.HfSolver.Cg,
        "minres" => Training.HfSolver.Minres,
        "minres-qlp" => Training.HfSolver.MinresQlp,
        _ => throw Bad(text, "cg, minres, minres-qlp"),
    };

    /// <summary>The Hessian-free solver preconditioner's spelling, normalised: "none", "diagonal" or "kfac".</summary>
    public static string HfPreconditioner(string text) => Lower(text) switch
    {
        "none" or "diagonal" or "kfac" => Lower(text),
        _ => throw Bad(text, "none, diagonal, kfac"),
    };

    public static TorchSharp.torch.ScalarType Dtype(string text) => Lower(text) switch
    {
        "float32" => TorchSharp.torch.ScalarType.Float32,
        "float64" => TorchSharp.torch.ScalarType.Float64,
        _ => throw Bad(text, "float32, float64"),
    };

    /// <summary>Splits "a, b,c" into trimmed non-empty parts.</summary>
    public static IReadOnlyList<string> List(string? text) =>
        string.IsNullOrWhiteSpace(text) ? Array.Empty<string>()
            : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static string Lower(string text) => text.Trim().ToLowerInvariant();

    private static FormatException Bad(string text, string choices) => new($"'{text}' is not one of {choices}");
}
