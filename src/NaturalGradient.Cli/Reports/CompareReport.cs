using System.Globalization;
using System.Text;
using NaturalGradient.Training;
using NaturalGradient.Training.Experiments.Compare;

namespace NaturalGradient.Cli.Reports;

/// <summary>report.md of a comparison: configuration, the results table (best learning rate per method), the grid, figures.</summary>
internal static class CompareReport
{
    public sealed record Context(string Data, string Model, int Epochs, IReadOnlyList<long> Seeds, IReadOnlyList<int> BatchSizes,
        SelectionCriterion Criterion, IReadOnlyDictionary<string, OptimizerSettings> MethodSettings, string Command,
        IReadOnlyDictionary<string, List<double>> Grid);

    /// <summary>
    /// "Momentum = 0.9, Damping = 0.001, …": the settings <paramref name="settings"/>' method reads
    /// (<see cref="MethodDefaults.Reads"/>; every setting for a method it does not know), in declaration order, without
    /// the name and the learning rate (the grid gives it); an unset value reads "none".
    /// </summary>
    public static string SettingsText(OptimizerSettings settings)
    {
        var reads = MethodDefaults.Reads(settings);
        return string.Join(", ", typeof(OptimizerSettings).GetProperties()
            .Where(p => p.Name is not (nameof(OptimizerSettings.Name) or nameof(OptimizerSettings.LearningRate)))
            .Where(p => reads is null || reads.Contains(p.Name))
            .Select(p => $"{p.Name} = {Value(p.GetValue(settings))}"));
    }

    private static string Value(object? value) => value switch
    {
        null => "none",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "none",
    };

    private static string G(double v, string format = "G4") => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "–";
    private static string MeanSd(Stat s, string format = "G4") => s.Count == 0 ? "–" : s.Count == 1 ? G(s.Mean, format) : $"{G(s.Mean, format)} ± {G(s.Sd, "G2")}";

    public static string Render(Context c, IReadOnlyList<GridCell> cells, IReadOnlyList<GridCell> best)
    {
        var md = new StringBuilder();
        md.AppendLine($"# Comparison on {c.Data}");
        md.AppendLine();
        md.AppendLine($"Model {c.Model}; {c.Epochs} epochs; seeds {string.Join(", ", c.Seeds)}; batch sizes {string.Join(", ", c.BatchSizes)}; " +
                      $"best learning rate by {Criterion(c.Criterion)} (mean over seeds).");
        md.AppendLine();
        md.AppendLine($"Command: `{c.Command}`");
        md.AppendLine();
        md.AppendLine("Settings of each method (the ones it reads; the learning rate from the grid below):");
        md.AppendLine();
        md.AppendLine("| method | settings |");
        md.AppendLine("|---|---|");
        foreach (var (method, settings) in c.MethodSettings) md.AppendLine($"| {method} | {SettingsText(settings)} |");
        md.AppendLine();
        foreach (var m in c.BatchSizes)
        {
            var here = best.Where(b => b.BatchSize == m).ToList();
            var sgd = here.FirstOrDefault(b => b.Optimizer == "sgd");
            md.AppendLine($"## Batch size {m}");
            md.AppendLine();
            md.AppendLine("| method | best lr | final train loss | final test loss | test accuracy | median step (ms) | step / SGD step | wall (s) |");
            md.AppendLine("|---|---|---|---|---|---|---|---|");
            foreach (var b in here)
            {
                string ratio = sgd is null || !(sgd.StepMs.Mean > 0) ? "–" : G(b.StepMs.Mean / sgd.StepMs.Mean, "F2");
                string acc = b.TestAccuracy.Count == 0 ? "–" : MeanSd(new Stat(b.TestAccuracy.Mean * 100, b.TestAccuracy.Sd * 100, 0, 0, b.TestAccuracy.Count), "F2") + " %";
                md.AppendLine($"| {b.Optimizer} | {G(b.LearningRate)} | {MeanSd(b.TrainLoss)} | {MeanSd(b.TestLoss)} | {acc} | {G(b.StepMs.Mean, "F3")} | {ratio} | {G(b.WallSeconds.Mean, "F1")} |");
            }
            foreach (var lost in cells.Where(x => x.BatchSize == m).Select(x => x.Optimizer).Distinct().Where(o => here.All(b => b.Optimizer != o)))
                md.AppendLine($"| {lost} | – | every learning rate diverged or was refused | | | | | |");
            md.AppendLine();
            string s = c.BatchSizes.Count > 1 ? $"_m{m}" : "";
            md.AppendLine($"![loss vs steps](loss_vs_steps{s}.png)");
            md.AppendLine($"![loss vs time](loss_vs_time{s}.png)");
            md.AppendLine($"![grid](grid{s}.png)");
            md.AppendLine();
            md.AppendLine("<details><summary>Learning-rate grid</summary>");
            md.AppendLine();
            md.AppendLine("| method | lr | finished seeds | final train loss | final test loss |");
            md.AppendLine("|---|---|---|---|---|");
            foreach (var cell in cells.Where(x => x.BatchSize == m))
                md.AppendLine($"| {cell.Optimizer} | {G(cell.LearningRate)} | {cell.Finished.Count}/{cell.Runs.Count} | {MeanSd(cell.TrainLoss)} | {MeanSd(cell.TestLoss)} |");
            md.AppendLine();
            md.AppendLine("</details>");
            md.AppendLine();
        }
        if (c.BatchSizes.Count > 1) md.AppendLine("![final loss vs batch size](batch_size.png)").AppendLine();
        md.AppendLine("Times are medians of per-step wall time on a shared, noisy machine; compare ratios within one run, not absolute values.");
        return md.ToString();
    }

    private static string Criterion(SelectionCriterion c) => c switch
    {
        SelectionCriterion.TestAccuracy => "test accuracy",
        SelectionCriterion.TestLoss => "final test loss",
        _ => "final training loss",
    };
}
