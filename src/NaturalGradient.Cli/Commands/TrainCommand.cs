using System.CommandLine;
using NaturalGradient.Cli.Output;
using NaturalGradient.Cli.Rendering;
using NaturalGradient.Training.Data;
using NaturalGradient.Training;
using NaturalGradient.Training.TensorBoard;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad train</c>: parse → option records → load data → <see cref="Trainer"/> → run folder and summary.
/// </summary>
internal static class TrainCommand
{
    public static Command Create(CliContext ctx)
    {
        var options = new TrainOptions(ctx.Catalog.Names);
        var command = new Command("train", "Train a model on a data set and write a run folder (config.json, steps.csv, epochs.csv, metrics.json)");
        foreach (var option in options.All) command.Add(option);
        command.SetAction(parse => Execute(ctx, parse, options));
        return command;
    }

    private static int Execute(CliContext ctx, ParseResult parse, TrainOptions options)
    {
        var config = TrainBinder.Bind(parse, options, DateTime.Now);
        TensorBoardLog.EnsureFolder(config.TensorBoardDir);
        using var data = ctx.LoadData(config.Data, config.DataOptions);
        var info = DataInfo.From(config.Data, data);
        try
        {
            config.Model.ValidateFor(data.InputShape);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new UsageException(TrainBinder.Describe(e, options) + $" ('{config.Data}')");
        }

        var trainer = new Trainer(config.Model, config.Optimizer, config.Trainer, ctx.Catalog);
        using var tensorBoard = TensorBoardLog.Open(config.TensorBoardDir);
        var tensorBoardProgress = tensorBoard is null ? null : new TensorBoardProgress(tensorBoard);
        var console = ConsoleSetup.Create(ctx.Out, ctx.Interactive);
        string model = config.Model.ToString(), dataName = info.Name;
        TrainingResult result;
        TrainingDivergedException? diverged = null;
        try
        {
            result = ctx.Interactive
                ? LiveProgress.Run(console, model, dataName, progress => trainer.Run(data, new ProgressFanOut(progress, tensorBoardProgress), ctx.Cancellation))
                : trainer.Run(data, new ProgressFanOut(new PlainProgress(ctx.Out, model, dataName), tensorBoardProgress), ctx.Cancellation);
        }
        catch (TrainingDivergedException e)
        {
            diverged = e;
            result = e.Partial;
        }
        catch (ArgumentOutOfRangeException e) when (e.ParamName is { } name && options.PropertyToOption.ContainsKey(name))
        {
            // Settings that only the chosen method can judge (e.g. --metric-form covariance with kfac).
            throw new UsageException(TrainBinder.Describe(e, options));
        }

        RunFiles.Write(config.OutDir, config, info, result, diverged, parse.Tokens.Select(t => t.Value).ToList());
        SummaryTable.Render(console, result, config.OutDir, ctx.Interactive, diverged is not null);
        if (diverged is null) return ExitCodes.Success;
        ctx.Error.WriteLine($"natgrad: error: {diverged.Message} (partial run written to {config.OutDir}; try a smaller --lr or more --damping)");
        return ExitCodes.Diverged;
    }
}
