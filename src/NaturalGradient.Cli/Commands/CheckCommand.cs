using System.CommandLine;
using System.Globalization;
using NaturalGradient.Diagnostics;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Training;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad check</c>: the approximation diagnostics once, on the untrained model (seeded) and the first
/// <c>--batch-size</c> training examples: per layer, the method's block built from that batch against the exact block
/// (relative Frobenius error) and the cosine between the two damped natural-gradient directions. Takes the options of
/// <c>train</c> (data, model, method, Fisher, damping, K-FAC settings).
/// </summary>
internal static class CheckCommand
{
    public static Command Create(CliContext ctx)
    {
        var options = new TrainOptions(ctx.Catalog.Names);
        var command = new Command("check",
            "Approximation diagnostics: per layer, the method's block vs the exact Fisher block on one batch (relative Frobenius error, direction cosine)");
        foreach (var option in options.All) command.Add(option);
        command.SetAction(parse => Execute(ctx, parse, options));
        return command;
    }

    private static int Execute(CliContext ctx, ParseResult parse, TrainOptions options)
    {
        var config = TrainBinder.Bind(parse, options, DateTime.Now);
        using var raw = ctx.LoadData(config.Data, config.DataOptions);
        try
        {
            config.Model.ValidateFor(raw.InputShape);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new UsageException(TrainBinder.Describe(e, options) + $" ('{config.Data}')");
        }
        using var scope = NewDisposeScope();
        using var data = raw.To(config.Trainer.Dtype);
        manual_seed(config.Trainer.Seed);
        using var model = ModelFactory.Build(config.Model, data.InputShape, data.OutputCount, config.Trainer.Dtype);
        ILikelihood likelihood = data.Task == Training.Data.TaskKind.Classification ? new CategoricalLikelihood() : new GaussianLikelihood();
        using var generator = new Generator((ulong)config.Trainer.Seed);
        ITrainingOptimizer method;
        try
        {
            method = ctx.Catalog.Create(new OptimizerContext
            {
                Model = model, Likelihood = likelihood, Settings = config.Optimizer, Generator = generator, StepsPerEpoch = 1,
                TotalSteps = 1, BatchSize = config.Trainer.BatchSize,
            });
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName is { } name && options.PropertyToOption.ContainsKey(name))
        {
            throw new UsageException(TrainBinder.Describe(e, options));
        }
        using var _ = method;
        var preconditioner = method switch
        {
            NaturalGradientTrainingOptimizer n => n.Optimizer.Preconditioner,
            KbfgsTrainingOptimizer k => k.Optimizer.Preconditioner,
            _ => null,
        };
        if (preconditioner is null || ApproximationDiagnostics.Blocks(preconditioner.Curvature) is null)
            throw new UsageException($"--optimizer: check needs a method with per-layer blocks (block, tengrad, diag, kfac, ekfac, kbfgs, auto), got '{config.Optimizer.Name}'");

        long m = Math.Min(config.Trainer.BatchSize, data.TrainCount);
        var x = data.TrainX.narrow(0, 0, m);
        var y = data.TrainY.narrow(0, 0, m);
        var rows = ApproximationProbe.Run(preconditioner, model, x, y, config.Optimizer.Damping, fresh: true, seed: config.Trainer.Seed);
        Print(ctx.Out, config, m, rows);
        return ExitCodes.Success;
    }

    private static void Print(TextWriter w, TrainConfig config, long m, IReadOnlyList<LayerApproximation> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        w.WriteLine($"check: {config.Optimizer.Name} vs the exact {config.Optimizer.Fisher} Fisher block per layer; {config.Model} on {config.Data}, " +
                    $"{m} examples, damping {config.Optimizer.Damping.ToString("G3", inv)}");
        int width = Math.Max(5, rows.Max(r => r.Layer.Length));
        w.WriteLine($"{"layer".PadRight(width)}  {"params",8}  {"rel. Frobenius error",20}  {"direction cosine",16}");
        foreach (var r in rows)
        {
            string error = r.Measured ? r.RelativeFrobeniusError.ToString("E3", inv) : "not measured";
            string cosine = r.Measured ? r.DirectionCosine.ToString("F6", inv) : "";
            w.WriteLine($"{r.Layer.PadRight(width)}  {r.Parameters,8}  {error,20}  {cosine,16}");
        }
        if (rows.Any(r => !r.Measured))
            w.WriteLine($"(layers above {ApproximationDiagnostics.DefaultMaxBlockParameters} parameters are not measured: the exact block is dense)");
    }
}
