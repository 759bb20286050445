using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;

namespace NaturalGradient.Training;

/// <summary>
/// Per-method defaults of <see cref="OptimizerSettings"/> (learning rate, momentum, damping, Fisher kind, schedules,
/// KL clip), chosen from measured runs on weather, wine and Fashion-MNIST (docs/DEFAULTS.md lists the runs), and
/// which settings each method reads.
/// </summary>
public static class MethodDefaults
{
    /// <summary>The settings <c>natgrad train --optimizer NAME</c> uses when no other option is given.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unknown name.</exception>
    public static OptimizerSettings For(string name)
    {
        var key = (name ?? "").Trim().ToLowerInvariant();
        var common = new OptimizerSettings { Name = key };
        return key switch
        {
            "sgd" => common with { LearningRate = 0.1, Momentum = 0.9 },
            "adam" => common with { LearningRate = 0.01 },
            "exact" or "block" => NaturalGradient(common, learningRate: 0.03, momentum: 0.9, damping: 0.1),
            "tengrad" => NaturalGradient(common, learningRate: 0.01, momentum: 0.9, damping: 0.1),
            "diag" => NaturalGradient(common, learningRate: 0.01, momentum: 0.9, damping: 0.1),
            "kfac" => Kronecker(common, learningRate: 0.1, momentum: 0, damping: 0.01, KfacOptions.DefaultInverseUpdatePeriod) with { KfacInverse = new KfacOptions().InverseMethod },
            "ekfac" => Kronecker(common, learningRate: 0.1, momentum: 0, damping: 0.01, KfacOptions.DefaultEigenbasisUpdatePeriod),
            // The K-FAC preconditioner's factors come from the step's own batch (β = 0, inverses every step): it must match
            // the step's Gauss-Newton system, and stale factors cost more iterations than they save (docs/ALGORITHMS.md).
            "hf" => common with
            {
                LearningRate = 0.1, Momentum = 0, Damping = 0.01, HfMaxIterations = 10,
                Fisher = FisherKind.MonteCarlo, FactorDecay = 0, InverseUpdatePeriod = 1, FactorUpdatePeriod = 1,
            },
            // K-BFGS builds its secant pairs from loss gradients: the empirical Fisher (the neutral value) is required.
            "kbfgs" => common with { LearningRate = 0.03, Momentum = 0.9, Damping = 0.1, Fisher = FisherKind.Empirical },
            // The subspace search sets the step: only λ (operator damping and step penalty) and k matter.
            "ksd" => common with { Damping = 0.1, KsdDimension = 8 },
            _ => throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.Name), name,
                $"{nameof(OptimizerSettings.Name)} must be one of {string.Join(", ", Methods)}, got '{name}'"),
        };
    }

    /// <summary>The built-in methods that have defaults here.</summary>
    public static IReadOnlyList<string> Methods { get; } = new[] { "adam", "block", "diag", "ekfac", "exact", "hf", "kbfgs", "kfac", "ksd", "sgd", "tengrad" };

    private static OptimizerSettings NaturalGradient(OptimizerSettings s, double learningRate, double momentum, double damping) => s with
    {
        LearningRate = learningRate, Momentum = momentum, Damping = damping, Fisher = FisherKind.MonteCarlo,
    };

    /// <summary>
    /// K-FAC and EKFAC: the KL clip in the gradient form (η²Δᵀg before momentum, kfac-pytorch's; no metric product) with
    /// κ = 1e-2 (that form bounds twice the predicted KL plus the damping's share, so κ = 1e-3 held every step below what
    /// the step form allowed: docs/DEFAULTS.md), and the core's schedule (<see cref="KfacOptions"/>: factors every 3
    /// steps, K-FAC's inverses every 10, EKFAC's eigenbasis every 20), written out so that config.json shows it.
    /// </summary>
    private static OptimizerSettings Kronecker(OptimizerSettings s, double learningRate, double momentum, double damping, int inversePeriod) =>
        NaturalGradient(s, learningRate, momentum, damping) with
        {
            KlClip = 1e-2,
            KlClipForm = global::NaturalGradient.Optim.KlClipForm.PreconditionedGradient,
            InverseUpdatePeriod = inversePeriod,
            FactorUpdatePeriod = new KfacOptions().FactorUpdatePeriod,
        };

    /// <summary>
    /// The <see cref="OptimizerSettings"/> properties the method named by <c>settings.Name</c> reads, given the
    /// other settings (e.g. <see cref="OptimizerSettings.McSamples"/> only with the Monte-Carlo Fisher). Null for a
    /// method this class does not know (a custom catalog entry): then every property may matter.
    /// </summary>
    public static IReadOnlySet<string>? Reads(OptimizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var name = settings.Name.Trim().ToLowerInvariant();
        var set = new HashSet<string>(StringComparer.Ordinal)
        {
            nameof(OptimizerSettings.Name), nameof(OptimizerSettings.LearningRate), nameof(OptimizerSettings.WeightDecay),
            nameof(OptimizerSettings.LrDecay),
        };
        switch (name)
        {
            case "sgd":
                set.Add(nameof(OptimizerSettings.Momentum));
                return set;
            case "adam":
                set.UnionWith(new[] { nameof(OptimizerSettings.Beta1), nameof(OptimizerSettings.Beta2), nameof(OptimizerSettings.Eps) });
                return set;
            case "ksd":
                // The subspace search sets the step length: learning rate, momentum and weight decay are not used;
                // damping is both the Krylov operator's λ and the step penalty.
                return new HashSet<string>(StringComparer.Ordinal)
                {
                    nameof(OptimizerSettings.Name), nameof(OptimizerSettings.Damping), nameof(OptimizerSettings.KsdDimension),
                };
            case "exact" or "block" or "tengrad" or "diag" or "kfac" or "ekfac" or "hf" or "kbfgs" or "auto":
                break;
            default:
                return null;
        }
        set.UnionWith(new[]
        {
            nameof(OptimizerSettings.Momentum), nameof(OptimizerSettings.Damping), nameof(OptimizerSettings.DampingSchedule),
            nameof(OptimizerSettings.KlClip), nameof(OptimizerSettings.MetricSource), nameof(OptimizerSettings.ReportPredictedKl),
            nameof(OptimizerSettings.DiagnosticsEvery),
        });
        // Hessian-free multiplies by the Gauss-Newton matrix; Fisher statistics feed only its solver preconditioner.
        bool fisherStatistics = name != "hf" || settings.HfDiagonalPreconditioner || settings.HfKfacPreconditioner;
        if (fisherStatistics) set.Add(nameof(OptimizerSettings.Fisher));
        if (fisherStatistics && settings.Fisher == FisherKind.MonteCarlo) set.Add(nameof(OptimizerSettings.McSamples));
        if (settings.MetricSource == MetricSource.Unlabeled) set.Add(nameof(OptimizerSettings.UnlabeledCount));
        if (settings.KlClip is not null) set.Add(nameof(OptimizerSettings.KlClipForm));
        switch (name)
        {
            case "exact":
                set.UnionWith(new[] { nameof(OptimizerSettings.MetricForm), nameof(OptimizerSettings.MaxExactParameters) });
                break;
            case "block":
                set.UnionWith(new[] { nameof(OptimizerSettings.MetricForm), nameof(OptimizerSettings.MaxExactParameters) });
                break;
            case "tengrad":
                set.Add(nameof(OptimizerSettings.MetricForm));
                break;
            case "auto":
                set.Add(nameof(OptimizerSettings.MetricForm));
                set.Add(nameof(OptimizerSettings.KfacInverse));
                set.UnionWith(KroneckerSettings);
                break;
            case "kfac" or "ekfac":
                set.UnionWith(KroneckerSettings);
                if (name == "kfac") set.Add(nameof(OptimizerSettings.KfacInverse));   // EKFAC always decomposes
                set.Add(nameof(OptimizerSettings.KfacDistribution));
                if (settings.KfacDistribution != KfacDistribution.Replicated) set.Add(nameof(OptimizerSettings.FactorSyncPeriod));
                break;
            case "kbfgs":
                set.Add(nameof(OptimizerSettings.KbfgsMemory));
                break;
            case "hf":
                set.UnionWith(new[]
                {
                    nameof(OptimizerSettings.HfSolver), nameof(OptimizerSettings.HfMaxIterations), nameof(OptimizerSettings.HfTolerance),
                    nameof(OptimizerSettings.HfDiagonalPreconditioner), nameof(OptimizerSettings.HfKfacPreconditioner),
                });
                if (settings.HfKfacPreconditioner)
                {
                    set.UnionWith(KroneckerSettings);
                    set.Add(nameof(OptimizerSettings.KfacInverse));
                }
                break;
        }
        return set;
    }

    /// <summary>The settings of the Kronecker factors and their solve, read by every method that keeps K-FAC blocks.</summary>
    private static readonly string[] KroneckerSettings =
    {
        nameof(OptimizerSettings.InverseUpdatePeriod), nameof(OptimizerSettings.FactorUpdatePeriod), nameof(OptimizerSettings.FactorDecay),
        nameof(OptimizerSettings.KfacDamping), nameof(OptimizerSettings.KfacFactorPrecision), nameof(OptimizerSettings.KfacInversePrecision),
    };
}
