using System.Globalization;
using System.Text;
using NaturalGradient.Data;
using NaturalGradient.Fisher;
using NaturalGradient.Models;
using NaturalGradient.Training;

namespace NaturalGradient.Bench;

/// <summary>Resident memory at step 100 and at step 2,000 of a training run: growth must stay under 5%.</summary>
internal static class MemoryFlatness
{
    public static int Run()
    {
        using var data = DatasetCatalog.Load("weather", new DataOptions());
        var md = new StringBuilder("# Resident memory over 2,000 steps\n\nweather, MLP [32,16], batch 32, 55 epochs (2,035 steps), 1 thread.\n\n| method | RSS at step 100 (MiB) | RSS at the end (MiB) | growth |\n|---|---|---|---|\n");
        var rows = new List<object>();
        bool ok = true;
        foreach (var method in new[] { "sgd", "tengrad", "kfac", "hf" })
        {
            var result = new Trainer(new ModelSpec { Hidden = new[] { 32, 16 } },
                new OptimizerSettings { Name = method, LearningRate = 0.05, Momentum = 0, Damping = 1e-2, Fisher = FisherKind.Exact, HfMaxIterations = 10 },
                new TrainerOptions { Epochs = 55, BatchSize = 32, Seed = 0, Threads = 1 }).Run(data);
            double growth = result.RssGrowthPercent ?? double.NaN;
            ok &= growth < 5;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{method,-8} RSS step 100 {result.RssAtStep100Mb:F1} MiB, step {result.Steps.Count} {result.RssEndMb:F1} MiB, growth {growth:F1}%"));
            md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {method} | {result.RssAtStep100Mb:F1} | {result.RssEndMb:F1} | {growth:+0.0;-0.0}% |"));
            rows.Add(new { method, rssAt100 = result.RssAtStep100Mb, rssEnd = result.RssEndMb, steps = result.Steps.Count, growthPercent = growth });
        }
        Results.Save("memory", rows, md.ToString());
        return ok ? 0 : 1;
    }
}
