using System.Globalization;
using System.Text;
using NaturalGradient.Cli.Output;
using NaturalGradient.Training.Experiments.Paths;

namespace NaturalGradient.Cli.Commands;

/// <summary>paths.csv, paths.md and the console summary of <c>natgrad paths</c>.</summary>
internal static class PathsReport
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>One row per recorded point: method,start,step,b,w,loss (round-trip doubles).</summary>
    public static void WriteCsv(string path, IEnumerable<Trajectory> trajectories) => AtomicFile.Write(path, w =>
    {
        w.WriteLine("method,start,step,b,w,loss");
        foreach (var t in trajectories)
            foreach (var p in t.Points)
                w.WriteLine(string.Join(',', t.Method.Id(), t.Start.Name, p.Step.ToString(Inv),
                    p.B.ToString("R", Inv), p.W.ToString("R", Inv), p.Loss.ToString("R", Inv)));
    });

    public static void WriteMarkdown(string path, PathsResult result) => AtomicFile.WriteText(path, Markdown(result));

    internal static string Markdown(PathsResult r)
    {
        var x = r.Surface.Data;
        double mean = x.Average(), sd = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / x.Count);
        var s = new StringBuilder();
        s.AppendLine("# Paths on a one-hidden-unit auto-encoder (seed 001, Figure 1)");
        s.AppendLine();
        s.AppendLine("Model: x̂ = w·σ(w·x + b) − b (the seed's error (x − w·sigmoid(w·x + b) + b)²); loss L(b, w) = (1/n) Σ ½ (x − x̂)².");
        s.AppendLine(F($"Data: n = {x.Count} draws of N(0, 1) with --seed {r.Settings.Seed} (sample mean {mean:F4}, sd {sd:F4})."));
        s.AppendLine(F($"Steps: {r.Settings.Steps} per method and start. Surface grid: {r.Grid.B.Length}×{r.Grid.W.Length} over b ∈ [{r.Grid.B[0]:G4}, {r.Grid.B[^1]:G4}], w ∈ [{r.Grid.W[0]:G4}, {r.Grid.W[^1]:G4}]."));
        s.AppendLine("Update: θ ← θ − η (M + λI)⁻¹ ∂L/∂θ with M = H (Newton), G = mean JᵀJ (natural gradient), C = centred covariance of per-example gradients (Le Roux); gradient descent θ ← θ − η ∂L/∂θ.");
        s.AppendLine();
        s.AppendLine("\"Minimum\" is the local minimum of the basin where the path ends (damped Newton polish from its last point); " +
                     F($"\"steps to ε\" is the first step whose loss is within ε = {r.Summaries.FirstOrDefault()?.Tolerance ?? 1e-3:G3} of that minimum's loss (— if never)."));
        s.AppendLine();
        s.AppendLine("| start | method | η | λ | final (b, w) | final loss | minimum (b\\*, w\\*) | L\\* | steps to ε | note |");
        s.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var m in r.Summaries)
        {
            var t = m.Trajectory;
            var f = t.Final;
            s.AppendLine(F($"| {t.Start.Name} ({t.Start.Point.B:G4}, {t.Start.Point.W:G4}) | {t.Method.DisplayName()} | {t.Settings.LearningRate:G4} | {t.Settings.Damping:G4} | ({f.B:F4}, {f.W:F4}) | {f.Loss:F6} | ({m.Minimum.B:F4}, {m.Minimum.W:F4}) | {m.MinimumLoss:F6} | {(m.StepsToWithin is int k ? k.ToString(Inv) : "—")} | {t.StopReason ?? ""} |"));
        }
        s.AppendLine();
        s.AppendLine("Files: paths.png (contours of L over (b, w) with the paths: Newton blue, natural gradient gray, Le Roux orange, gradient descent purple), paths.csv (method,start,step,b,w,loss).");
        return s.ToString();
    }

    public static void WriteConsoleSummary(TextWriter output, PathsResult r)
    {
        output.WriteLine(F($"paths: data seed {r.Settings.Seed}, {r.Settings.Steps} steps, {r.Grid.B.Length}×{r.Grid.W.Length} grid"));
        foreach (var m in r.Summaries)
        {
            var t = m.Trajectory;
            output.WriteLine(F($"  {t.Start.Name}  {t.Method.Id(),-17} final loss {t.Final.Loss:F6} at ({t.Final.B:F3}, {t.Final.W:F3}); minimum {m.MinimumLoss:F6} at ({m.Minimum.B:F3}, {m.Minimum.W:F3}); steps to 1e-3: {(m.StepsToWithin?.ToString(Inv) ?? "never")}{(t.Stopped ? "; " + t.StopReason : "")}"));
        }
        output.WriteLine($"wrote {string.Join(", ", r.Files.Select(Path.GetFileName))} to {Path.GetFullPath(r.Settings.OutDir)}");
    }

    private static string F(FormattableString s) => s.ToString(Inv);
}
