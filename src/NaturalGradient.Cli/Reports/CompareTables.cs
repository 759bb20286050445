using System.Globalization;
using NaturalGradient.Cli.Output;
using NaturalGradient.Training.Experiments.Compare;

namespace NaturalGradient.Cli.Reports;

/// <summary>runs.csv (one row per run), curves.csv (per-epoch losses of every run) and compare.json.</summary>
internal static class CompareTables
{
    private static string F(double v) => double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "";
    private static string F(double? v) => v is { } x ? F(x) : "";

    public static void Write(string outDir, IReadOnlyList<CompareRunResult> results, IReadOnlyList<GridCell> cells,
        IReadOnlyList<GridCell> best, SelectionCriterion criterion)
    {
        AtomicFile.Write(Path.Combine(outDir, "runs.csv"), w =>
        {
            w.WriteLine("optimizer,lr,seed,batch_size,status,train_loss,test_loss,train_accuracy,test_accuracy,wall_s,steps,median_step_ms,message");
            foreach (var r in results)
                w.WriteLine(string.Join(',', r.Spec.Optimizer, F(r.Spec.LearningRate), r.Spec.Seed, r.Spec.BatchSize, r.Status.ToString().ToLowerInvariant(),
                    F(r.FinalTrainLoss), F(r.FinalTestLoss), F(r.FinalTrainAccuracy), F(r.FinalTestAccuracy), F(r.WallSeconds), r.Steps, F(r.MedianStepMs),
                    "\"" + (r.Message ?? "").Replace("\"", "'") + "\""));
        });
        AtomicFile.Write(Path.Combine(outDir, "curves.csv"), w =>
        {
            w.WriteLine("optimizer,lr,seed,batch_size,epoch,steps,elapsed_s,train_loss,test_loss,test_accuracy");
            foreach (var r in results)
                foreach (var p in r.Curve)
                    w.WriteLine(string.Join(',', r.Spec.Optimizer, F(r.Spec.LearningRate), r.Spec.Seed, r.Spec.BatchSize, p.Epoch, p.Steps,
                        F(p.ElapsedSeconds), F(p.TrainLoss), F(p.TestLoss), F(p.TestAccuracy)));
        });
        AtomicFile.WriteText(Path.Combine(outDir, "compare.json"), RunCache.Serialize(new
        {
            criterion = criterion.ToString(),
            best = best.Select(Summary),
            cells = cells.Select(Summary),
            runs = results,
        }));
    }

    private static object Summary(GridCell c) => new
    {
        optimizer = c.Optimizer, batchSize = c.BatchSize, lr = c.LearningRate, allFinished = c.AllFinished,
        trainLoss = c.TrainLoss, testLoss = c.TestLoss, testAccuracy = c.TestAccuracy, stepMs = c.StepMs,
    };
}
