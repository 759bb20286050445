using System.CommandLine;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>Turns the parsed <c>train</c> options into validated option records.</summary>
internal static class TrainBinder
{
    /// <summary>Builds and validates the run configuration.</summary>
    /// <exception cref="UsageException">An option value out of range, named by its option.</exception>
    /// <param name="checkMethodOptions">Refuse options the chosen method does not read (train); compare checks per method.</param>
    public static TrainConfig Bind(ParseResult p, TrainOptions o, DateTime now, bool checkMethodOptions = true)
    {
        var data = p.GetValue(o.Data)?.Trim() is { Length: > 0 } d ? d : throw new UsageException($"{o.Data.Name} is required (or {o.Resume.Name} DIR to continue a run)");
        var seed = p.GetValue(o.Seed);
        var dataOptions = new DataOptions
        {
            TargetColumn = NullIfEmpty(p.GetValue(o.Target)),
            IgnoreColumns = CliChoices.List(p.GetValue(o.Ignore)),
            TestFraction = p.GetValue(o.TestFraction),
            MaxTrainExamples = p.GetValue(o.MaxTrain),
            Seed = seed,
            Task = NullIfEmpty(p.GetValue(o.Task)) is { } task ? RunLifecycleOptions.ParseTask(task) : null,
            Delimiter = p.GetValue(o.Delimiter) is { Length: > 0 } delimiter ? RunLifecycleOptions.ParseDelimiter(delimiter) : null,
            HasHeader = !p.GetValue(o.NoHeader),
            DropMissing = p.GetValue(o.DropMissing),
            Names = new DataOptionNames(o.Target.Name, o.Ignore.Name, o.Task.Name, o.DropMissing.Name),
        };
        var model = new ModelSpec
        {
            Kind = ModelSpecParser.ParseKind(p.GetValue(o.Model)!),
            Hidden = ModelSpecParser.ParseHidden(p.GetValue(o.Hidden) ?? ""),
            Activation = ModelSpecParser.ParseActivation(p.GetValue(o.Activation)!),
        };
        var settings = SettingsBinder.Bind(p, o, p.GetValue(o.Optimizer)!.Trim().ToLowerInvariant());
        var trainer = new TrainerOptions
        {
            Epochs = p.GetValue(o.Epochs),
            BatchSize = p.GetValue(o.BatchSize),
            Seed = seed,
            Dtype = CliChoices.Dtype(p.GetValue(o.Dtype)!),
            Threads = p.GetValue(o.Threads),
        };
        var outDir = NullIfEmpty(p.GetValue(o.Out))
            ?? Path.Combine("runs", $"{Slug(data)}-{settings.Name}-{now:yyyyMMdd-HHmmss}");
        var tensorBoard = NullIfEmpty(p.GetValue(o.TensorBoard));
        if (tensorBoard is not null) settings = settings with { ReportPredictedKl = true };   // the predicted-KL series
        var config = new TrainConfig(data, dataOptions, model, settings, trainer, outDir) { TensorBoardDir = tensorBoard };
        Validate(config, o);
        if (checkMethodOptions && SettingsBinder.NotApplicable(p, o, settings) is { Count: > 0 } unused)
            throw new UsageException(SettingsBinder.DescribeNotApplicable(unused, settings, o));
        return config;
    }

    /// <summary>Runs every record's <c>Validate()</c>, reporting the first problem under its option's name.</summary>
    public static void Validate(TrainConfig c, TrainOptions o)
    {
        if (!(c.DataOptions.TestFraction >= 0 && c.DataOptions.TestFraction < 1))
            throw new UsageException(FormattableString.Invariant($"{o.TestFraction.Name} must be in [0, 1), got {c.DataOptions.TestFraction}"));
        if (c.DataOptions.MaxTrainExamples is < 1)
            throw new UsageException($"{o.MaxTrain.Name} must be ≥ 1, got {c.DataOptions.MaxTrainExamples}");
        if (c.Optimizer.KfacFactorPrecision == NaturalGradient.Curvature.Kfac.KfacFactorPrecision.Bfloat16 && c.Trainer.Dtype == TorchSharp.torch.ScalarType.Float64)
            throw new UsageException($"{o.FactorPrecision.Name} bfloat16 applies to float32 models; with {o.Dtype.Name} float64 the factors are float64 (drop one of the two)");
        if (c.Optimizer.KfacInversePrecision == NaturalGradient.Curvature.Kfac.KfacInversePrecision.Bfloat16 && c.Trainer.Dtype == TorchSharp.torch.ScalarType.Float64)
            throw new UsageException($"{o.InversePrecision.Name} bfloat16 applies to float32 models; with {o.Dtype.Name} float64 the solve is float64 (drop one of the two)");
        if (c.Optimizer.MetricSource == MetricSource.Unlabeled && c.Optimizer.Fisher == NaturalGradient.Fisher.FisherKind.Empirical)
            throw new UsageException($"{o.Metric.Name} unlabeled needs {o.Fisher.Name} mc or exact (the empirical Fisher needs labels)");
        try
        {
            c.Model.Validate();
            c.Optimizer.Validate();
            c.Trainer.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new UsageException(Describe(e, o));
        }
        if (c.Trainer.Dtype == TorchSharp.torch.ScalarType.Float32)
            foreach (var (value, option) in new[] { (c.Optimizer.LearningRate, o.Lr.Name), (c.Optimizer.Damping, o.Damping.Name) })
                if (Math.Abs(value) > float.MaxValue)
                    throw new UsageException(FormattableString.Invariant($"{option} {value:G4} is beyond the float32 range (±3.4e38) of this run's weights"));
        if (c.DataIsFile && c.DataOptions.TargetColumn is null)
            throw new UsageException($"{o.Target.Name} is required when {o.Data.Name} is a file ('{c.Data}')");
    }

    /// <summary>"LearningRate must be &gt; 0, got -1" → "--lr must be &gt; 0, got -1".</summary>
    public static string Describe(ArgumentOutOfRangeException e, TrainOptions o)
    {
        var text = e.Message.Split('\n')[0].Trim();
        if (e.ParamName is { } name)
        {
            text = text.Replace($" (Parameter '{name}')", "");
            if (o.PropertyToOption.TryGetValue(name, out var option))
                text = text.StartsWith(name, StringComparison.Ordinal) ? option + text[name.Length..] : $"{option}: {text}";
        }
        return text;
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    private static string Slug(string data)
    {
        var name = Path.GetFileNameWithoutExtension(data.TrimEnd('/', '\\'));
        var chars = name.Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '-').ToArray();
        return chars.Length == 0 ? "data" : new string(chars);
    }
}
