using System.Globalization;
using NaturalGradient.Training.Data;
using NaturalGradient.Training;
using Spectre.Console;

namespace NaturalGradient.Cli.Rendering;

/// <summary>The end-of-run table: losses, accuracies, time, steps, memory, and where the files are.</summary>
internal static class SummaryTable
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Render(IAnsiConsole console, TrainingResult r, string outDir, bool interactive, bool diverged)
    {
        var table = new Table()
            .Border(interactive ? TableBorder.Rounded : TableBorder.Ascii)
            .Title(diverged ? "run summary (diverged)" : "run summary")
            .AddColumn("metric")
            .AddColumn(new TableColumn("value").RightAligned());
        var f = r.Final;
        Row(table, $"train loss (epoch {f.Epoch})", G(f.TrainLoss));
        Row(table, $"test loss (epoch {f.Epoch})", G(f.TestLoss));
        if (r.Plan.Task == TaskKind.Classification)
        {
            Row(table, "train accuracy", Pct(f.TrainAccuracy));
            Row(table, "test accuracy", Pct(f.TestAccuracy));
        }
        Row(table, "wall time", string.Create(Inv, $"{r.WallSeconds:F1} s"));
        Row(table, "steps", string.Create(Inv, $"{r.Steps.Count} of {r.Plan.TotalSteps} ({r.StepsPerSecond:F1}/s)"));
        var measured = r.Steps.Where(s => s.SolverIterationsUnpreconditioned is not null && s.SolverIterations is not null).ToList();
        if (measured.Count > 0)
        {
            double with = measured.Average(s => s.SolverIterations!.Value), without = measured.Average(s => s.SolverIterationsUnpreconditioned!.Value);
            Row(table, "solver iterations saved", string.Create(Inv,
                $"{without - with:F1} per step ({with:F1} preconditioned vs {without:F1} without, {measured.Count} steps)"));
        }
        Row(table, "RSS at step 100", Mb(r.RssAtStep100Mb));
        Row(table, "RSS at end", Mb(r.RssEndMb) + (r.RssGrowthPercent is { } g ? string.Create(Inv, $" ({g:+0.0;-0.0}%)") : ""));
        Row(table, "output", outDir);
        console.Write(table);
    }

    private static void Row(Table t, string name, string value) => t.AddRow(Markup.Escape(name), Markup.Escape(value));

    private static string G(double v) => v.ToString("G6", Inv);

    private static string Pct(double? v) => v is { } d ? (100 * d).ToString("F1", Inv) + "%" : "–";

    private static string Mb(double? v) => v is { } d ? d.ToString("F1", Inv) + " MiB" : "–";
}
