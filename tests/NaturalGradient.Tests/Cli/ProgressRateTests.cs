using System.Globalization;
using System.Text.RegularExpressions;
using NaturalGradient.Cli.Rendering;
using NaturalGradient.Training;
using NaturalGradient.Training.Data;

namespace NaturalGradient.Tests.Cli;

/// <summary>The progress lines' steps/s count the steps this process took: a run resumed at step 500 does not report 500 steps in its first second.</summary>
public class ProgressRateTests
{
    [Fact]
    public void ResumedRun_RateCountsOnlyItsOwnSteps()
    {
        var output = new StringWriter();
        var progress = new PlainProgress(output, "mlp", "tiny");
        progress.OnStart(new TrainingPlan("sgd", TaskKind.Regression, 2, 500, 1000, 10, 100, 10, 1, TorchSharp.torch.ScalarType.Float32));
        progress.OnStep(new StepMetrics(501, 2, 0.5, 0.1, null, null, null, null, 1, null, false));
        Thread.Sleep(100);
        progress.OnEpoch(new EpochMetrics(2, 0.5, 0.6, null, null, 0.1, 1));
        var rate = double.Parse(Regex.Match(output.ToString(), @"([0-9.]+) steps/s").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.InRange(rate, 0, 10);   // one step in ≥ 0.1 s (before: 501 steps in 0.1 s, ≈ 5000/s)
    }
}
