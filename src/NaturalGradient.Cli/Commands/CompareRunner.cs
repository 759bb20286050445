using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Experiments.Compare;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Commands;

/// <summary>Trains one comparison run and condenses it into a <see cref="CompareRunResult"/>.</summary>
internal static class CompareRunner
{
    public static CompareRunResult Run(CompareRunSpec spec, ModelSpec model, OptimizerSettings settings, TrainerOptions options,
        Dataset data, OptimizerCatalog catalog, CancellationToken cancellation, ITrainingProgress? progress = null)
    {
        try
        {
            settings.Validate();
            var result = new Trainer(model, settings, options, catalog).Run(data, progress, cancellation);
            return From(spec, result, RunStatus.Finished, null);
        }
        catch (TrainingDivergedException e)
        {
            return From(spec, e.Partial, RunStatus.Diverged, e.Message);
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or ModelNotSupportedException or NotSupportedException or LayerNotObservedException)
        {
            return new CompareRunResult { Spec = spec, Status = RunStatus.Refused, Message = e.Message.Split('\n')[0] };
        }
    }

    private static CompareRunResult From(CompareRunSpec spec, TrainingResult r, RunStatus status, string? message)
    {
        var times = r.Steps.Skip(Math.Min(5, r.Steps.Count / 2)).Select(s => s.StepMs).OrderBy(x => x).ToArray();
        var final = r.Final;
        return new CompareRunResult
        {
            Spec = spec,
            Status = status,
            Message = message,
            FinalTrainLoss = final.TrainLoss,
            FinalTestLoss = final.TestLoss,
            FinalTrainAccuracy = final.TrainAccuracy,
            FinalTestAccuracy = final.TestAccuracy,
            WallSeconds = r.WallSeconds,
            Steps = r.Steps.Count,
            MedianStepMs = times.Length == 0 ? double.NaN : times[times.Length / 2],
            Curve = r.Epochs.Select(e => new EpochPoint(e.Epoch, e.Epoch * r.Plan.StepsPerEpoch, e.ElapsedSeconds, e.TrainLoss, e.TestLoss, e.TestAccuracy)).ToList(),
        };
    }
}
