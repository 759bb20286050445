using System.Globalization;
using System.Text;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Experiments.Scale;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench;

/// <summary>
/// <c>steps</c>: the median time of one optimisation step of every method in the catalog divided by one SGD step's,
/// measured in the same run on the same problem and batch (warm-up steps first, each step in its own dispose
/// scope). Problems: MLP 784-256-10 (synthetic inputs and labels, batch 256) and the embedded weather data with MLP
/// [32,16] (batch 128). Methods whose dense curvature would not fit in memory are listed, not run.
/// </summary>
internal static class StepRatios
{
    private const double MemoryBudgetMb = 4000;
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private sealed record Problem(string Name, long[] InputShape, int[] Hidden, long Outputs, Tensor X, Tensor Y, ILikelihood Likelihood)
    {
        public int Batch => (int)X.shape[0];

        /// <summary>p_l = out × (in + 1) per Linear layer.</summary>
        public IReadOnlyList<long> LayerParameters()
        {
            var sizes = new List<long> { InputShape.Aggregate(1L, (a, b) => a * b) };
            sizes.AddRange(Hidden.Select(h => (long)h));
            sizes.Add(Outputs);
            return Enumerable.Range(0, sizes.Count - 1).Select(i => sizes[i + 1] * (sizes[i] + 1)).ToList();
        }
    }

    public static int Run(bool quick)
    {
        int warmup = quick ? 3 : 10, repeats = quick ? 10 : 50;
        var machine = Results.MachineLine();
        Console.WriteLine($"steps: every method's median step / SGD's; {repeats} timed steps after {warmup} warm-up; {machine}");

        manual_seed(0);
        using var mnistX = randn(256, 784);
        using var mnistY = randint(0, 10, new long[] { 256 }, dtype: ScalarType.Int64);
        using var weather = DatasetCatalog.Load("weather", new DataOptions());
        using var weatherX = weather.TrainX.narrow(0, 0, 128).to_type(ScalarType.Float32);
        using var weatherY = weather.TrainY.narrow(0, 0, 128).to_type(ScalarType.Float32);
        var problems = new[]
        {
            new Problem("MLP 784-256-10, batch 256 (synthetic inputs, 10 classes)", new long[] { 784 }, new[] { 256 }, 10, mnistX, mnistY, new CategoricalLikelihood()),
            new Problem("weather, MLP [32,16], batch 128 (embedded data, regression)", weather.InputShape, new[] { 32, 16 }, weather.OutputCount, weatherX, weatherY, new GaussianLikelihood()),
        };

        // Cheapest first, then any method a later build registers; sgd is the reference and comes first.
        var preferred = new[] { "sgd", "adam", "diag", "tengrad", "kfac", "ekfac", "hf", "block", "exact" };
        var methods = preferred.Where(OptimizerCatalog.Default.Contains)
            .Concat(OptimizerCatalog.Default.Names.Where(n => !preferred.Contains(n))).ToList();
        var rows = new List<object>();
        var md = new StringBuilder("# Step time relative to SGD\n\n");
        md.AppendLine(string.Create(Inv, $"`dotnet run -c Release --project bench/NaturalGradient.Bench -- steps{(quick ? " --quick" : "")}`, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC. "));
        md.AppendLine(string.Create(Inv, $"One run; {repeats} timed steps after {warmup} warm-up steps on one fixed batch; float32, empirical Fisher, damping 0.01, no momentum, "));
        md.AppendLine("inverses / eigendecompositions refreshed every step (T_inv = 1), HF with 10 CG iterations. SGD is timed first and again last; ");
        md.AppendLine("the ratios use the faster of the two (the other shows how much the shared machine drifted).");
        md.AppendLine($"Machine: {machine}. Compare the ratios, not the absolute times.").AppendLine();

        foreach (var problem in problems)
        {
            var layers = problem.LayerParameters();
            // Measure everything first: the reference is the faster of SGD's two timings (first and last), so that a burst
            // of load during one short SGD timing does not scale every ratio.
            var measured = new List<(string Label, string Method, PointMeasurement? Point, string? Note)>();
            foreach (var method in methods.Append("sgd"))
            {
                string label = method == "sgd" && measured.Count > 0 ? "sgd (again, last)" : method;
                double predictedMb = ScalePlan.PredictedCurvatureBytes(method, layers, 4) / (1024.0 * 1024.0);
                if (predictedMb > MemoryBudgetMb)
                {
                    measured.Add((label, method, null, string.Create(Inv, $"not run: a dense curvature of {predictedMb / 1024:N0} GiB")));
                    continue;
                }
                manual_seed(0);
                using var model = ModelFactory.Mlp(problem.InputShape, problem.Outputs, problem.Hidden, Activation.Tanh, ScalarType.Float32);
                var m = StepCostProbe.Measure(method, model, problem.X, problem.Y, problem.Likelihood,
                    new ProbeOptions { Warmup = warmup, Repeats = repeats, Settings = ProbeOptions.ScaleSettings() });
                measured.Add((label, method, m.Status == PointStatus.Measured ? m : null, m.Status == PointStatus.Measured ? null : m.Note));
                Console.WriteLine(m.Status == PointStatus.Measured
                    ? string.Create(Inv, $"{problem.Name,-62} {label,-18} median {m.MedianMs,9:F3} ms (p10 {m.P10Ms:F3}, p90 {m.P90Ms:F3})")
                    : $"{problem.Name,-62} {label,-18} {m.Note}");
            }
            double sgd = measured.Where(r => r.Method == "sgd" && r.Point is not null).Select(r => r.Point!.MedianMs).DefaultIfEmpty(double.NaN).Min();

            md.AppendLine(string.Create(Inv, $"## {problem.Name}: {layers.Sum():N0} parameters")).AppendLine();
            md.AppendLine(string.Create(Inv, $"Reference: one SGD step = {sgd:F3} ms (the faster of its two timings).")).AppendLine();
            md.AppendLine("| method | median step (ms) | p10 | p90 | step / SGD step |");
            md.AppendLine("|---|---:|---:|---:|---:|");
            foreach (var (label, method, m, note) in measured)
            {
                if (m is null)
                {
                    md.AppendLine($"| {label} | – | | | {note} |");
                    rows.Add(new { problem = problem.Name, method, status = "not measured", note });
                    continue;
                }
                double ratio = m.MedianMs / sgd;
                Console.WriteLine(string.Create(Inv, $"{problem.Name,-62} {label,-18} {ratio,7:F1}× sgd"));
                md.AppendLine(string.Create(Inv, $"| {label} | {m.MedianMs:F3} | {m.P10Ms:F3} | {m.P90Ms:F3} | {ratio:F1} |"));
                rows.Add(new
                {
                    problem = problem.Name, method = label.StartsWith("sgd (again") ? "sgd_again" : method, status = "measured", median_ms = m.MedianMs,
                    p10_ms = m.P10Ms, p90_ms = m.P90Ms, timed_steps = m.TimedSteps, reference_ms = sgd, ratio_to_sgd = ratio,
                });
            }
            md.AppendLine();
        }
        Results.Save("steps", new { mode = "steps", quick, warmup, repeats, machine = Results.Machine(), rows }, md.ToString());
        return 0;
    }
}
