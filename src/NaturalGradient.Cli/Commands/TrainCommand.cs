using NaturalGradient.Distributed;
using System.CommandLine;
using NaturalGradient.Cli.Output;
using NaturalGradient.Cli.Rendering;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using NaturalGradient.Training.TensorBoard;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad train</c>: parse → option records → check the output folder → load data → check the model and the machine →
/// <see cref="Trainer"/> (builds the method, checks a resume checkpoint) → only then run.json, model.json and
/// <c>--force</c>'s removal of an earlier run → training with checkpoints (periodic, final, on Ctrl+C/SIGTERM) and streamed
/// steps.csv/epochs.csv → model.pt, config.json, metrics.json and the summary. <c>--resume DIR</c> rebuilds the run
/// from DIR/run.json and continues it from DIR/checkpoint.ngck.
/// </summary>
internal static class TrainCommand
{
    public static Command Create(CliContext ctx)
    {
        var options = new TrainOptions(ctx.Catalog.Names);
        var command = new Command("train", "Train a model on a data set and write a run folder (run.json, model.pt, model.json, checkpoint.ngck, steps.csv, epochs.csv, config.json, metrics.json)");
        foreach (var option in options.All) command.Add(option);
        command.SetAction(parse => Execute(ctx, parse, options, command));
        return command;
    }

    private static int Execute(CliContext ctx, ParseResult parse, TrainOptions options, Command command)
    {
        var arguments = parse.Tokens.Select(t => t.Value).ToList();
        TrainingCheckpoint? resume = null;
        try
        {
            if (NullIfEmpty(parse.GetValue(options.Resume)) is { } resumeDir)
            {
                var given = parse.Tokens.Where(t => t.Type == System.CommandLine.Parsing.TokenType.Option).Select(t => t.Value).ToList();
                var others = given.Where(o => o != options.Resume.Name && o != options.Epochs.Name).Distinct().ToList();
                if (others.Count > 0)
                    throw new UsageException($"{options.Resume.Name} takes no other options than {options.Epochs.Name} (got {string.Join(", ", others)}): the run continues with its own (from {Path.Combine(resumeDir, RunFolder.RunFile)})");
                arguments = RunFolder.ReadRun(resumeDir).ToList();
                if (given.Contains(options.Epochs.Name))
                {
                    // More epochs for a run that completed (or a longer plan): replace the stored --epochs.
                    int at = arguments.IndexOf(options.Epochs.Name);
                    if (at >= 0) arguments.RemoveRange(at, Math.Min(2, arguments.Count - at));
                    arguments.AddRange(new[] { options.Epochs.Name, parse.GetValue(options.Epochs).ToString(System.Globalization.CultureInfo.InvariantCulture) });
                }
                parse = command.Parse(arguments.SkipWhile(a => a == command.Name).ToList());
                if (parse.Errors.Count > 0) throw new UsageException($"{options.Resume.Name}: the stored command line no longer parses ({parse.Errors[0].Message})");
                var checkpointPath = Path.Combine(resumeDir, RunFolder.CheckpointFile);
                try
                {
                    resume = TrainingCheckpoint.Load(checkpointPath);
                }
                catch (Exception e) when (e is InvalidDataException or FileNotFoundException)
                {
                    throw new UsageException($"{options.Resume.Name}: {e.Message}");
                }
                RunFolder.CheckWritable(resumeDir, options.Resume.Name);
                // run.json takes the new --epochs only when the continued run starts (after the checkpoint is accepted).
                return Train(ctx, parse, options, arguments, resumeDir, resume, rewriteRun: given.Contains(options.Epochs.Name));
            }
            return Train(ctx, parse, options, arguments, null, null, rewriteRun: false);
        }
        finally
        {
            resume?.Dispose();
        }
    }

    /// <summary>
    /// Under <c>mpirun -np N</c> (N &gt; 1) every rank trains data-parallel (docs/DISTRIBUTED.md); rank 0 writes the run
    /// folder and the progress, the other ranks write nothing. A single process never loads MPI. MPI is finalised
    /// when training ends normally; after an error the process exits without it, and mpirun stops the other ranks.
    /// </summary>
    private static int Train(CliContext ctx, ParseResult parse, TrainOptions options, List<string> arguments, string? resumeDir,
        TrainingCheckpoint? resume, bool rewriteRun)
    {
        ICommunicator communicator;
        try
        {
            communicator = Launch.FromEnvironment();
        }
        catch (Exception e) when (e is MpiNotAvailableException or MpiException or FormatException)
        {
            throw new UsageException(e.Message);
        }
        int code = communicator.IsRoot
            ? Train(ctx, parse, options, arguments, resumeDir, resume, rewriteRun, communicator)
            : TrainFollower(ctx, parse, options, resume, communicator);
        communicator.Dispose();
        return code;
    }

    /// <summary>A rank other than 0 of a data-parallel job: the same training, silent, writing nothing.</summary>
    private static int TrainFollower(CliContext ctx, ParseResult parse, TrainOptions options, TrainingCheckpoint? resume, ICommunicator communicator)
    {
        var config = TrainBinder.Bind(parse, options, DateTime.Now);
        using var data = ctx.LoadData(config.Data, config.DataOptions);
        config.Model.ValidateFor(data.InputShape);
        Trainer trainer;
        try
        {
            trainer = CreateTrainer(ctx, config, communicator);
        }
        catch (UsageException) { return ExitCodes.Usage; } // rank 0 reports it
        // The same checkpoint schedule as rank 0 (taking a checkpoint may be a collective: distributed K-FAC), writing nothing.
        var every = NullIfEmpty(parse.GetValue(options.CheckpointEvery)) is { } text ? RunLifecycleOptions.ParseCheckpointEvery(text) : (null, null);
        var checkpoints = new CheckpointPlan { EverySteps = every.Item1, EveryEpochs = every.Item2, Write = (_, _) => { } };
        try
        {
            trainer.Run(data, null, ctx.Cancellation, checkpoints, resume);
            return ExitCodes.Success;
        }
        catch (TrainingDivergedException) { return ExitCodes.Diverged; }
        catch (TrainingInterruptedException) { return ExitCodes.Interrupted; }
        catch (ArgumentOutOfRangeException) { return ExitCodes.Usage; } // the same setting fails on rank 0, which reports it
        catch (ResumeSettingsMismatchException) { return ExitCodes.Usage; } // the same checkpoint is refused on rank 0
    }

    /// <summary>The trainer; a method or batch size that cannot run on this many ranks is a usage error naming the job size.</summary>
    private static Trainer CreateTrainer(CliContext ctx, TrainConfig config, ICommunicator communicator)
    {
        try
        {
            return new Trainer(config.Model, config.Optimizer, config.Trainer, ctx.Catalog, communicator);
        }
        catch (ArgumentOutOfRangeException e) when (communicator.Size > 1)
        {
            throw new UsageException($"mpirun -np {communicator.Size}: {e.Message.Split(" (Parameter")[0]}");
        }
    }

    /// <summary>
    /// Rank 0's run. Everything that can refuse it runs before the run folder is touched: the folder check, the data,
    /// the model against the data, the machine check, the trainer's settings, and inside <see cref="Trainer.Run"/> the
    /// method's construction and the resume checkpoint. The folder is written only at <see cref="ITrainingProgress.OnStart"/>,
    /// which the trainer calls once all of these passed: then <c>--force</c> removes the earlier run, run.json and
    /// model.json are written (a resume with <c>--epochs</c>: run.json takes the new count), and steps.csv/epochs.csv
    /// start (<see cref="MetricsStream"/>). A refused run leaves the folder as it was.
    /// </summary>
    private static int Train(CliContext ctx, ParseResult parse, TrainOptions options, List<string> arguments, string? resumeDir,
        TrainingCheckpoint? resume, bool rewriteRun, ICommunicator communicator)
    {
        var config = TrainBinder.Bind(parse, options, DateTime.Now);
        TensorBoardLog.CheckFolder(config.TensorBoardDir);
        if (resumeDir is not null) config = config with { OutDir = resumeDir };
        var every = NullIfEmpty(parse.GetValue(options.CheckpointEvery)) is { } text ? RunLifecycleOptions.ParseCheckpointEvery(text) : (null, null);
        if (resumeDir is null && string.IsNullOrWhiteSpace(parse.GetValue(options.Out))) config = config with { OutDir = RunFolder.Unused(config.OutDir) };
        bool force = parse.GetValue(options.Force);
        if (resumeDir is null) RunFolder.CheckNew(config.OutDir, force);

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
        MachineCheck.Run(config, data, options);

        var trainer = CreateTrainer(ctx, config, communicator);
        var description = resumeDir is null ? SavedModel.Describe(config.Model, data, config.Trainer.Dtype, config.DataOptions, config.Data) : null;
        void StartFolder()
        {
            if (description is not null)
            {
                if (force) RunFolder.RemoveRun(config.OutDir);
                RunFolder.WriteRun(config.OutDir, arguments.Where(a => a != options.Force.Name).ToList());
                description.Save(config.OutDir);
            }
            else if (rewriteRun) RunFolder.WriteRun(config.OutDir, arguments);
        }
        using var tensorBoard = config.TensorBoardDir is { } tensorBoardDir ? new TensorBoardOnStart(tensorBoardDir) : null;
        var tensorBoardProgress = tensorBoard is null ? null : new TensorBoardProgress(tensorBoard.Open);
        var console = ConsoleSetup.Create(ctx.Out, ctx.Interactive);
        string model = config.Model.ToString(), dataName = info.Name;
        var checkpoints = RunFolder.Plan(config.OutDir, every.Item1, every.Item2);
        TrainingResult result;
        TrainingDivergedException? diverged = null;
        TrainingInterruptedException? interrupted = null;
        using (var stream = new MetricsStream(config.OutDir, null, resume?.Steps ?? Array.Empty<StepMetrics>(), resume?.Epochs ?? Array.Empty<EpochMetrics>(), StartFolder))
        {
            try
            {
                result = ctx.Interactive
                    ? LiveProgress.Run(console, model, dataName, progress => trainer.Run(data, new MetricsTee(stream, new ProgressFanOut(progress, tensorBoardProgress)), ctx.Cancellation, checkpoints, resume))
                    : trainer.Run(data, new MetricsTee(stream, new ProgressFanOut(new PlainProgress(ctx.Out, model, dataName), tensorBoardProgress)), ctx.Cancellation, checkpoints, resume);
            }
            catch (TrainingDivergedException e)
            {
                diverged = e;
                result = e.Partial;
            }
            catch (TrainingInterruptedException e)
            {
                interrupted = e;
                result = e.Partial;
            }
            catch (ResumeSettingsMismatchException e) when (resume is not null)
            {
                // An option the stored command line does not give has the method's default: the line says so.
                bool Typed(string name) => options.All.FirstOrDefault(op => op.Name == name) is not { } option
                                           || parse.GetResult(option) is { Implicit: false };
                throw new UsageException($"{options.Resume.Name}: {ResumeRefusal.Describe(e, options, Path.Combine(config.OutDir, RunFolder.RunFile), Typed)}");
            }
            catch (InvalidDataException e) when (resume is not null)
            {
                throw new UsageException($"{options.Resume.Name}: {e.Message}");
            }
            catch (ArgumentOutOfRangeException e) when (e.ParamName is { } name && options.PropertyToOption.ContainsKey(name))
            {
                // Settings that only the chosen method can judge (e.g. --metric-form covariance with kfac).
                throw new UsageException(TrainBinder.Describe(e, options));
            }
        }

        if (result.Epochs.Count > 0)
            RunFiles.Write(config.OutDir, config, info, result, diverged, arguments, interrupted is null ? null : "interrupted");
        var checkpointPath = Path.Combine(config.OutDir, RunFolder.CheckpointFile);
        if (interrupted is not null)
        {
            ctx.Error.WriteLine($"natgrad: interrupted after step {interrupted.Step}; checkpoint written to {checkpointPath} " +
                                $"(continue with: natgrad train --resume {config.OutDir})");
            return ExitCodes.Interrupted;
        }
        SummaryTable.Render(console, result, config.OutDir, ctx.Interactive, diverged is not null);
        if (diverged is null) return ExitCodes.Success;
        var last = File.Exists(checkpointPath) ? $"; the last checkpoint is {checkpointPath}" : "";
        ctx.Error.WriteLine($"natgrad: error: {diverged.Message} (partial run written to {config.OutDir}{last}; try a smaller --lr or more --damping)");
        return ExitCodes.Diverged;
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    /// <summary>Streams metrics to the run folder, then shows them.</summary>
    private sealed class MetricsTee(MetricsStream stream, ITrainingProgress display) : ITrainingProgress
    {
        public void OnStart(TrainingPlan plan) { stream.OnStart(plan); display.OnStart(plan); }
        public void OnStep(StepMetrics step) { stream.OnStep(step); display.OnStep(step); }
        public void OnEpoch(EpochMetrics epoch) { stream.OnEpoch(epoch); display.OnEpoch(epoch); }
        public void OnNote(string note) => display.OnNote(note);
    }
}
