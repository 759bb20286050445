using System.Globalization;
using NaturalGradient.Training.Data;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Rendering;

/// <summary>The one-line texts shared by the live and plain progress displays.</summary>
internal static class ProgressText
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string Header(TrainingPlan p, string model, string data) => string.Create(Inv,
        $"training {model} with {p.Optimizer} on {data} ({p.Task.ToString().ToLowerInvariant()}): {p.ParameterCount:N0} parameters, " +
        $"{p.TrainCount} train / {p.TestCount} test examples, {p.Epochs} epochs × {p.StepsPerEpoch} steps, " +
        $"{p.Dtype.ToString().ToLowerInvariant()}, {p.Threads} threads");

    public static string Epoch(EpochMetrics e, TrainingPlan p, long steps, double stepsPerSecond)
    {
        var text = string.Create(Inv, $"epoch {e.Epoch}/{p.Epochs}  train_loss {e.TrainLoss:G5}  test_loss {e.TestLoss:G5}");
        if (p.Task == TaskKind.Classification && e.TrainAccuracy is { } tr && e.TestAccuracy is { } te)
            text += string.Create(Inv, $"  train_acc {tr:F3}  test_acc {te:F3}");
        return text + string.Create(Inv, $"  step {steps}/{p.TotalSteps}  {stepsPerSecond:F1} steps/s  {e.ElapsedSeconds:F1}s");
    }

    public static string Step(StepMetrics s, TrainingPlan p, double stepsPerSecond) => string.Create(Inv,
        $"step {s.Step}/{p.TotalSteps}  epoch {s.Epoch}/{p.Epochs}  loss {s.Loss:G5}  {stepsPerSecond:F1} steps/s");
}
