using System.Globalization;
using System.Text;
using NaturalGradient.Experiments.Scale;
using NaturalGradient.Fisher;
using NaturalGradient.Training;

namespace NaturalGradient.Bench;

/// <summary>Median step time of every method divided by one SGD step's, measured in the same run on the same problem.</summary>
internal static class StepRatios
{
    private static readonly string[] Methods = { "sgd", "adam", "diag", "tengrad", "kfac", "ekfac", "hf", "block", "exact" };

    public static int Run(bool quick)
    {
        var problems = new (string Name, ModelSize Size, int Batch)[]
        {
            ("MLP 3-32-32-1 (weather-sized), batch 128", new ModelSize(2, 32, 3), 128),
            ("MLP 784-256-10, batch 256", new ModelSize(1, 256, 784, 10), 256),
        };
        var rows = new List<object>();
        var md = new StringBuilder("# Step time relative to SGD\n\nOne run, 1 torch thread, float32, empirical Fisher, damping 0.01; medians after warm-up. " +
                                   "Shared, noisy machine: compare the ratios, not the absolute times.\n\n");
        foreach (var (name, size, batch) in problems)
        {
            md.AppendLine($"## {name} ({size.Parameters} parameters)\n");
            md.AppendLine("| method | median step (ms) | p10 | p90 | step / SGD step |");
            md.AppendLine("|---|---|---|---|---|");
            double sgd = double.NaN;
            foreach (var method in Methods)
            {
                if (method is "exact" && size.Parameters > 20_000 || method is "block" && size.LayerParameters().Max() > 60_000)
                {
                    md.AppendLine($"| {method} | – | | | too large for a dense Fisher |");
                    continue;
                }
                var settings = new OptimizerSettings { LearningRate = 0.01, Momentum = 0, Damping = 1e-2, Fisher = FisherKind.Empirical, HfMaxIterations = 10, InverseUpdatePeriod = 1 };
                var m = StepCostProbe.Measure(method, size, batch, warmup: quick ? 3 : 10, repeats: quick ? 10 : 50, settings);
                if (method == "sgd") sgd = m.MedianMs;
                double ratio = m.MedianMs / sgd;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-45} {method,-8} median {m.MedianMs,9:F3} ms  ratio {ratio,7:F1}"));
                md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {method} | {m.MedianMs:F3} | {m.P10Ms:F3} | {m.P90Ms:F3} | {ratio:F1} |"));
                rows.Add(new { problem = name, method, m.MedianMs, m.P10Ms, m.P90Ms, ratioToSgd = ratio });
            }
            md.AppendLine();
        }
        Results.Save("steps", rows, md.ToString());
        return 0;
    }
}
