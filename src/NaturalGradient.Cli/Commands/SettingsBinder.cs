using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// Builds a method's <see cref="OptimizerSettings"/>: its measured defaults (<see cref="MethodDefaults.For"/>) with the
/// options given on the command line on top, and finds given options the method does not read.
/// </summary>
internal static class SettingsBinder
{
    /// <summary>The settings of method <paramref name="name"/>: per-method defaults, then every option given.</summary>
    public static OptimizerSettings Bind(ParseResult p, TrainOptions o, string name)
    {
        var d = MethodDefaults.Methods.Contains(name) ? MethodDefaults.For(name) : new OptimizerSettings { Name = name };
        return new OptimizerSettings
        {
            Name = name,
            LearningRate = p.GetValue(o.Lr) ?? d.LearningRate,
            Momentum = p.GetValue(o.Momentum) ?? d.Momentum,
            WeightDecay = Pick(p, o.WeightDecay, d.WeightDecay),
            LrDecay = Given(p, o.LrDecay) ? LrSchedule.Parse(p.GetValue(o.LrDecay)!) : d.LrDecay,
            Beta1 = Pick(p, o.Beta1, d.Beta1),
            Beta2 = Pick(p, o.Beta2, d.Beta2),
            Eps = Pick(p, o.Eps, d.Eps),
            Damping = p.GetValue(o.Damping) ?? d.Damping,
            DampingSchedule = Given(p, o.DampingSchedule) ? CliChoices.DampingSchedule(p.GetValue(o.DampingSchedule)!) : d.DampingSchedule,
            Fisher = Given(p, o.Fisher) ? CliChoices.Fisher(p.GetValue(o.Fisher)!) : d.Fisher,
            McSamples = Pick(p, o.McSamples, d.McSamples),
            MetricForm = Given(p, o.MetricForm) ? CliChoices.MetricForm(p.GetValue(o.MetricForm)!) : d.MetricForm,
            MetricSource = Given(p, o.Metric) ? CliChoices.Metric(p.GetValue(o.Metric)!) : d.MetricSource,
            UnlabeledCount = p.GetValue(o.UnlabeledCount) ?? d.UnlabeledCount,
            InverseUpdatePeriod = p.GetValue(o.InversePeriod) ?? d.InverseUpdatePeriod,
            FactorUpdatePeriod = p.GetValue(o.FactorPeriod) ?? d.FactorUpdatePeriod,
            FactorDecay = Pick(p, o.FactorDecay, d.FactorDecay),
            KfacInverse = Given(p, o.KfacInverse) ? CliChoices.KfacInverse(p.GetValue(o.KfacInverse)!) : d.KfacInverse,
            KfacDamping = Given(p, o.KfacDamping) ? CliChoices.KfacDamping(p.GetValue(o.KfacDamping)!) : d.KfacDamping,
            KfacFactorPrecision = Given(p, o.FactorPrecision) ? CliChoices.FactorPrecision(p.GetValue(o.FactorPrecision)!) : d.KfacFactorPrecision,
            KfacInversePrecision = Given(p, o.InversePrecision) ? CliChoices.InversePrecision(p.GetValue(o.InversePrecision)!) : d.KfacInversePrecision,
            KfacDistribution = Given(p, o.KfacDistribution) ? CliChoices.KfacDistribution(p.GetValue(o.KfacDistribution)!) : d.KfacDistribution,
            FactorSyncPeriod = Pick(p, o.FactorSync, d.FactorSyncPeriod),
            HfDiagonalPreconditioner = Given(p, o.HfDiagonal) || Given(p, o.HfPreconditioner)
                ? p.GetValue(o.HfDiagonal) || CliChoices.HfPreconditioner(p.GetValue(o.HfPreconditioner)!) == "diagonal"
                : d.HfDiagonalPreconditioner,
            HfKfacPreconditioner = Given(p, o.HfPreconditioner)
                ? CliChoices.HfPreconditioner(p.GetValue(o.HfPreconditioner)!) == "kfac"
                : d.HfKfacPreconditioner,
            KlClip = Given(p, o.KlClip) ? ParseKlClip(p.GetValue(o.KlClip)!) : d.KlClip,
            KlClipForm = Given(p, o.KlClipForm) ? CliChoices.KlClipForm(p.GetValue(o.KlClipForm)!) : d.KlClipForm,
            HfSolver = Given(p, o.HfSolver) ? CliChoices.HfSolver(p.GetValue(o.HfSolver)!) : d.HfSolver,
            HfMaxIterations = p.GetValue(o.HfIters) ?? d.HfMaxIterations,
            HfTolerance = Pick(p, o.HfTol, d.HfTolerance),
            MaxExactParameters = Pick(p, o.MaxExactParams, d.MaxExactParameters),
            DiagnosticsEvery = Pick(p, o.DiagnosticsEvery, d.DiagnosticsEvery),
            KbfgsMemory = Pick(p, o.KbfgsMemory, d.KbfgsMemory),
            KsdDimension = Pick(p, o.KsdDimension, d.KsdDimension),
        };
    }

    /// <summary>The options given on the command line that the method of <paramref name="settings"/> does not read.</summary>
    public static IReadOnlyList<string> NotApplicable(ParseResult p, TrainOptions o, OptimizerSettings settings)
    {
        var reads = MethodDefaults.Reads(settings);
        if (reads is null) return Array.Empty<string>();
        return o.PropertyToOption
            .Where(kv => typeof(OptimizerSettings).GetProperty(kv.Key) is not null && !reads.Contains(kv.Key))
            .Select(kv => kv.Value).Distinct()
            .Where(name => o.All.First(opt => opt.Name == name) is var option && Given(p, option))
            .ToList();
    }

    /// <summary>"--damping, --fisher do not apply to sgd (it reads --lr, --momentum, --weight-decay, --lr-decay)".</summary>
    /// <remarks>A method that reads --kl-clip reads --kl-clip-form only when a clip is set: that case is worded as such,
    /// "--kl-clip-form has no effect without a KL clip (kfac runs with --kl-clip none here); give --kl-clip X".</remarks>
    public static string DescribeNotApplicable(IReadOnlyList<string> options, OptimizerSettings settings, TrainOptions o)
    {
        var reads = MethodDefaults.Reads(settings)!;
        if (options.Contains(o.KlClipForm.Name) && reads.Contains(nameof(OptimizerSettings.KlClip)))
        {
            var clip = $"{o.KlClipForm.Name} has no effect without a KL clip ({settings.Name} runs with {o.KlClip.Name} none here); give {o.KlClip.Name} X";
            var rest = options.Where(n => n != o.KlClipForm.Name).ToList();
            return rest.Count == 0 ? clip : $"{DescribeNotApplicable(rest, settings, o)}; {clip}";
        }
        var used = o.PropertyToOption.Where(kv => reads.Contains(kv.Key) && kv.Key != nameof(OptimizerSettings.Name))
            .Select(kv => kv.Value).Distinct();
        string verb = options.Count == 1 ? "does" : "do";
        return $"{string.Join(", ", options)} {verb} not apply to {settings.Name} (it reads {string.Join(", ", used)})";
    }

    /// <summary>"none" → null; a number → that number (range checked later by <see cref="OptimizerSettings.Validate"/>).</summary>
    /// <exception cref="FormatException">Neither.</exception>
    public static double? ParseKlClip(string text)
    {
        var t = text.Trim();
        if (t.Equals("none", StringComparison.OrdinalIgnoreCase)) return null;
        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)) return v;
        throw new FormatException($"'{text}' is not a number or none");
    }

    /// <summary>True when <paramref name="option"/> was written on the command line (not a default).</summary>
    public static bool Given(ParseResult p, Option option) => p.GetResult(option) is { Implicit: false };

    private static T Pick<T>(ParseResult p, Option<T> option, T fallback) => Given(p, option) ? p.GetValue(option)! : fallback;
}
