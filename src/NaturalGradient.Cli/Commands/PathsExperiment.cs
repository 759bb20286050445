using NaturalGradient.Cli.Output;
using NaturalGradient.Training.Experiments.Paths;

namespace NaturalGradient.Cli.Commands;

/// <summary>What one <c>natgrad paths</c> run computed and wrote.</summary>
internal sealed record PathsResult(PathsSettings Settings, AutoencoderSurface Surface, IReadOnlyList<Trajectory> Trajectories,
    IReadOnlyList<PathSummary> Summaries, LossGrid Grid, IReadOnlyList<string> Files);

/// <summary>Runs the paths experiment and writes paths.png, paths.csv and paths.md (each atomically).</summary>
internal static class PathsExperiment
{
    /// <summary>The plotted region always covers [−4, 4]²; it grows to take in paths that leave it, up to ±20.</summary>
    public const double BaseHalfWidth = 4, MaxHalfWidth = 20;

    public static PathsResult Run(PathsSettings settings)
    {
        var surface = AutoencoderSurface.Sample(settings.Seed);
        var trajectories = PathRunner.RunAll(surface, PathStart.Defaults, settings.Steps);
        var summaries = trajectories.Select(t => PathRunner.Summarize(surface, t)).ToList();
        var (bMin, bMax, wMin, wMax) = PlotRegion(trajectories);
        var grid = surface.Grid(bMin, bMax, wMin, wMax, settings.EffectiveGrid);

        Directory.CreateDirectory(settings.OutDir);
        var png = Path.Combine(settings.OutDir, "paths.png");
        var csv = Path.Combine(settings.OutDir, "paths.csv");
        var md = Path.Combine(settings.OutDir, "paths.md");
        var result = new PathsResult(settings, surface, trajectories, summaries, grid, [png, csv, md]);
        AtomicFile.WriteBytes(png, PathsPlot.RenderPng(result));
        PathsReport.WriteCsv(csv, trajectories);
        PathsReport.WriteMarkdown(md, result);
        return result;
    }

    /// <summary>[−4, 4]² grown to every finite path point (plus 5 % margin), clamped to [−20, 20]².</summary>
    internal static (double BMin, double BMax, double WMin, double WMax) PlotRegion(IEnumerable<Trajectory> trajectories)
    {
        double bMin = -BaseHalfWidth, bMax = BaseHalfWidth, wMin = -BaseHalfWidth, wMax = BaseHalfWidth;
        foreach (var p in trajectories.SelectMany(t => t.Points))
        {
            bMin = Math.Min(bMin, p.B); bMax = Math.Max(bMax, p.B);
            wMin = Math.Min(wMin, p.W); wMax = Math.Max(wMax, p.W);
        }
        double mb = 0.05 * (bMax - bMin), mw = 0.05 * (wMax - wMin);
        static double Clamp(double v) => Math.Clamp(v, -MaxHalfWidth, MaxHalfWidth);
        (bMin, bMax) = bMin < -BaseHalfWidth || bMax > BaseHalfWidth ? (Clamp(bMin - mb), Clamp(bMax + mb)) : (bMin, bMax);
        (wMin, wMax) = wMin < -BaseHalfWidth || wMax > BaseHalfWidth ? (Clamp(wMin - mw), Clamp(wMax + mw)) : (wMin, wMax);
        return (bMin, bMax, wMin, wMax);
    }
}
