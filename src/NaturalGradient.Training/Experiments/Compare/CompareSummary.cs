namespace NaturalGradient.Training.Experiments.Compare;

/// <summary>How the best learning rate of a method is chosen.</summary>
public enum SelectionCriterion { TrainLoss, TestLoss, TestAccuracy }

/// <summary>Mean and spread of one (method, learning rate, batch size) over seeds.</summary>
public sealed record GridCell(string Optimizer, int BatchSize, double LearningRate, IReadOnlyList<CompareRunResult> Runs)
{
    public IReadOnlyList<CompareRunResult> Finished => Runs.Where(r => r.Status == RunStatus.Finished).ToList();
    public bool AllFinished => Runs.Count > 0 && Runs.All(r => r.Status == RunStatus.Finished);
    public Stat TrainLoss => Stat.Of(Finished.Select(r => r.FinalTrainLoss));
    public Stat TestLoss => Stat.Of(Finished.Select(r => r.FinalTestLoss));
    public Stat TestAccuracy => Stat.Of(Finished.Where(r => r.FinalTestAccuracy.HasValue).Select(r => r.FinalTestAccuracy!.Value));
    public Stat StepMs => Stat.Of(Finished.Select(r => r.MedianStepMs));
    public Stat WallSeconds => Stat.Of(Finished.Select(r => r.WallSeconds));
}

/// <summary>Mean, standard deviation (n − 1), minimum and maximum; NaN when empty.</summary>
public sealed record Stat(double Mean, double Sd, double Min, double Max, int Count)
{
    public static Stat Of(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).ToArray();
        if (v.Length == 0) return new Stat(double.NaN, double.NaN, double.NaN, double.NaN, 0);
        double mean = v.Average();
        double sd = v.Length > 1 ? Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1)) : 0;
        return new Stat(mean, sd, v.Min(), v.Max(), v.Length);
    }
}

/// <summary>Groups run results into grid cells and picks each method's best learning rate.</summary>
public static class CompareSummary
{
    public static IReadOnlyList<GridCell> Cells(IEnumerable<CompareRunResult> results) =>
        results.GroupBy(r => (r.Spec.Optimizer, r.Spec.BatchSize, r.Spec.LearningRate))
            .Select(g => new GridCell(g.Key.Optimizer, g.Key.BatchSize, g.Key.LearningRate, g.OrderBy(r => r.Spec.Seed).ToList()))
            .OrderBy(c => c.BatchSize).ThenBy(c => c.Optimizer, StringComparer.Ordinal).ThenBy(c => c.LearningRate)
            .ToList();

    /// <summary>
    /// The best cell of each (method, batch size) by <paramref name="criterion"/>, among cells whose every seed
    /// finished; a method whose every learning rate diverged gets no entry.
    /// </summary>
    public static IReadOnlyList<GridCell> Best(IEnumerable<GridCell> cells, SelectionCriterion criterion) =>
        cells.Where(c => c.AllFinished)
            .GroupBy(c => (c.Optimizer, c.BatchSize))
            .Select(g => criterion switch
            {
                SelectionCriterion.TestAccuracy => g.OrderByDescending(c => c.TestAccuracy.Mean).First(),
                SelectionCriterion.TestLoss => g.OrderBy(c => c.TestLoss.Mean).First(),
                _ => g.OrderBy(c => c.TrainLoss.Mean).First(),
            })
            .OrderBy(c => c.BatchSize).ThenBy(c => c.Optimizer, StringComparer.Ordinal)
            .ToList();
}
