using System.Globalization;
using NaturalGradient.Training;

namespace NaturalGradient.Cli.Output;

/// <summary>The per-step and per-epoch CSV files of a run (invariant culture, empty cell = not applicable).</summary>
internal static class CsvTables
{
    /// <summary>Columns of steps.csv.</summary>
    public static readonly string[] StepColumns =
        { "step", "epoch", "loss", "lr", "damping", "rho", "predicted_kl", "solver_iterations", "step_ms", "rss_mb", "skipped", "curvature_ms", "solver_iterations_unpreconditioned", "comm_ms" };

    /// <summary>Columns of epochs.csv.</summary>
    public static readonly string[] EpochColumns =
        { "epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy", "lr", "elapsed_s" };

    public static void WriteSteps(TextWriter w, IEnumerable<StepMetrics> steps)
    {
        w.WriteLine(string.Join(",", StepColumns));
        foreach (var s in steps) w.WriteLine(StepRow(s));
    }

    /// <summary>Columns of approximation.csv (one row per measured step and layer).</summary>
    public static readonly string[] ApproximationColumns = { "step", "layer", "parameters", "relative_frobenius_error", "direction_cosine" };

    public static void WriteApproximation(TextWriter w, IEnumerable<StepMetrics> steps)
    {
        w.WriteLine(string.Join(",", ApproximationColumns));
        foreach (var s in steps)
            foreach (var a in s.Approximation ?? Array.Empty<NaturalGradient.Diagnostics.LayerApproximation>())
                w.WriteLine(string.Join(",", Int(s.Step), a.Layer, Int(a.Parameters),
                    a.Measured ? Num(a.RelativeFrobeniusError) : "", a.Measured ? Num(a.DirectionCosine) : ""));
    }

    public static void WriteEpochs(TextWriter w, IEnumerable<EpochMetrics> epochs)
    {
        w.WriteLine(string.Join(",", EpochColumns));
        foreach (var e in epochs) w.WriteLine(EpochRow(e));
    }

    /// <summary>One row of steps.csv (without the line end).</summary>
    public static string StepRow(StepMetrics s) =>
        string.Join(",", Int(s.Step), Int(s.Epoch), Num(s.Loss), Num(s.LearningRate), Num(s.Damping), Num(s.Rho),
            Num(s.PredictedKl), Int(s.SolverIterations), Fixed(s.StepMs, 3), Fixed(s.RssMb, 1), s.Skipped ? "1" : "0", Fixed(s.CurvatureMs, 3),
            Int(s.SolverIterationsUnpreconditioned), Fixed(s.CommunicationMs, 3));

    /// <summary>One row of epochs.csv (without the line end).</summary>
    public static string EpochRow(EpochMetrics e) =>
        string.Join(",", Int(e.Epoch), Num(e.TrainLoss), Num(e.TestLoss), Num(e.TrainAccuracy), Num(e.TestAccuracy),
            Num(e.LearningRate), Fixed(e.ElapsedSeconds, 3));

    /// <summary>Round-trip ("R") format, so repeated runs can be compared exactly.</summary>
    private static string Num(double? v) => v is { } d ? d.ToString("R", CultureInfo.InvariantCulture) : "";

    private static string Fixed(double? v, int digits) => v is { } d ? d.ToString("F" + digits, CultureInfo.InvariantCulture) : "";

    private static string Int(long? v) => v is { } i ? i.ToString(CultureInfo.InvariantCulture) : "";
}
