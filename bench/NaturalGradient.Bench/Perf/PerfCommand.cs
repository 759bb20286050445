using System.Globalization;
using System.Text;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench.Perf;

/// <summary>
/// <c>perf</c>: the performance benchmark of docs/PERFORMANCE.md, in two parts.
/// <para>Step ratios: every natural-gradient method's step time over an SGD-with-momentum step measured in the same
/// process, interleaved (<see cref="InterleavedSteps"/>), on MLP 784-512-512-10 (ReLU, Fashion-MNIST batches) at batch
/// 256 and 128 and on the figure-5 nets (tanh MLPs of depth 1–16 × 20 units, 16 inputs, batch 128, synthetic
/// regression), through <c>NaturalGradientDescent.Step</c> and through the preconditioner + torch.optim.SGD; the GEMM
/// rate measured in the same rounds and each method's FLOP floor from it (<see cref="FlopModel"/>).</para>
/// <para>Time to accuracy (<see cref="TimeToAccuracy"/>): seconds of training to 85 % and 88 % Fashion-MNIST test
/// accuracy, best of the learning-rate grid, as ratios to Adam's.</para>
/// </summary>
internal static class PerfCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Steps after which the lean steps' weights are compared with the library's (past K-FAC's inverse refreshes at 10 and 20 and EKFAC's basis refresh at 20).</summary>
    private const int LeanCheckSteps = 22;

    /// <param name="StepMethods">The step part's configurations named by <c>--methods</c> (SGD, the reference, is always timed); null = every one.</param>
    private sealed record Args(bool Quick, bool Kernels, bool Steps, bool Accuracy, int Threads, int Rounds, int Epochs, string[] AccuracyMethods, bool FullGrid, string[] Problems,
        bool CpuClock, string[]? StepMethods);

    /// <summary>The step part's configuration names: SGD, Adam, the natural-gradient configurations and the lean steps.</summary>
    private static readonly string[] StepMethodNames = new[] { "sgd", "adam" }.Concat(StepConfigs.NaturalGradientMethods).Concat(StepConfigs.SerialFactorizationMethods)
        .Concat(LeanStep.Methods.Select(m => m + "-lean")).ToArray();

    /// <summary>perf's options: every one but <c>--quick</c> takes a value.</summary>
    private static readonly string[] ValueOptions =
    {
        "--part", "--methods", "--problems", "--threads", "--rounds", "--epochs", "--clock", "--kl-clip", "--kl-clip-form",
        "--eval-every", "--inverse-period", "--factor-period", "--damping", "--momentum", "--factor-precision",
    };

    private static Args Parse(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--quick") continue;
            if (!ValueOptions.Contains(args[i]))
                throw new ArgumentException($"unknown option '{args[i]}' (perf takes --quick and {string.Join(", ", ValueOptions)})");
            i++;   // its value (checked where it is read)
        }
        string? Value(string name)
        {
            int i = Array.IndexOf(args, name);
            if (i < 0) return null;
            if (i + 1 >= args.Length) throw new ArgumentException($"option {name} needs a value");
            return args[i + 1];
        }
        int Int(string name, int fallback)
        {
            var v = Value(name);
            if (v is null) return fallback;
            return int.TryParse(v, NumberStyles.Integer, Inv, out var r) && r >= 1 ? r : throw new ArgumentException($"option {name}: expected an integer ≥ 1, got '{v}'");
        }
        bool quick = args.Contains("--quick");
        var part = Value("--part") ?? "all";
        if (part is not ("all" or "kernels" or "steps" or "accuracy")) throw new ArgumentException($"option --part: expected all, kernels, steps or accuracy, got '{part}'");
        bool steps = part is "all" or "steps", accuracy = part is "all" or "accuracy";
        // --methods names the time-to-accuracy runs and the step part's configurations; each part takes the names it knows.
        var given = Value("--methods")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var m in given ?? Array.Empty<string>())
            if (!(accuracy && TimeToAccuracy.Grid.ContainsKey(m)) && !(steps && StepMethodNames.Contains(m)))
                throw new ArgumentException($"option --methods: unknown method '{m}' (expected {string.Join(", ", (accuracy ? TimeToAccuracy.Grid.Keys : Enumerable.Empty<string>()).Union(steps ? StepMethodNames : Enumerable.Empty<string>()))})");
        var methods = given?.Where(TimeToAccuracy.Grid.ContainsKey).ToArray()
            ?? (quick ? "adam,sgd,kfac,kfac-bf16inv,tengrad" : "adam,sgd,kfac,kfac-bf16inv,ekfac,ekfac-bf16inv,tengrad,diag,hf").Split(',');
        if (accuracy && methods.Length == 0)
            throw new ArgumentException($"option --methods: no time-to-accuracy method among '{Value("--methods")}' (expected {string.Join(", ", TimeToAccuracy.Grid.Keys)}; or --part steps)");
        TimeToAccuracy.EvalEvery = Int("--eval-every", 50);
        TimeToAccuracy.InversePeriod = Value("--inverse-period") is null ? null : Int("--inverse-period", 10);
        TimeToAccuracy.FactorPeriod = Int("--factor-period", new NaturalGradient.Curvature.Kfac.KfacOptions().FactorUpdatePeriod);
        TimeToAccuracy.FactorPrecision = (Value("--factor-precision") ?? "model") switch
        {
            "model" => NaturalGradient.Curvature.Kfac.KfacFactorPrecision.Model,
            "bfloat16" => NaturalGradient.Curvature.Kfac.KfacFactorPrecision.Bfloat16,
            var v => throw new ArgumentException($"option --factor-precision: expected model or bfloat16, got '{v}'"),
        };
        if (Value("--momentum") is { } momentum)
            TimeToAccuracy.Momentum = double.TryParse(momentum, NumberStyles.Float, Inv, out var mu) && mu >= 0 && mu < 1
                ? mu : throw new ArgumentException($"option --momentum: expected a number in [0, 1), got '{momentum}'");
        if (Value("--damping") is { } damping)
            TimeToAccuracy.Damping = double.TryParse(damping, NumberStyles.Float, Inv, out var lambda) && lambda > 0 && double.IsFinite(lambda)
                ? lambda : throw new ArgumentException($"option --damping: expected a number > 0, got '{damping}'");
        if (Value("--kl-clip") is { } clip)
            TimeToAccuracy.KlClip = double.TryParse(clip, NumberStyles.Float, Inv, out var kappa) && kappa > 0 && double.IsFinite(kappa)
                ? kappa : throw new ArgumentException($"option --kl-clip: expected a number > 0, got '{clip}'");
        TimeToAccuracy.ClipForm = Value("--kl-clip-form") switch
        {
            null => null,
            "step" => NaturalGradient.Optim.KlClipForm.StepQuadraticForm,
            "gradient" => NaturalGradient.Optim.KlClipForm.PreconditionedGradient,
            var v => throw new ArgumentException($"option --kl-clip-form: expected step or gradient, got '{v}'"),
        };
        var problems = (Value("--problems") ?? "mlp256,mlp128,figure5").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var p in problems)
            if (p is not ("mlp256" or "mlp128" or "figure5")) throw new ArgumentException($"option --problems: expected mlp256, mlp128 or figure5, got '{p}'");
        var clock = Value("--clock") ?? "wall";
        if (clock is not ("wall" or "cpu")) throw new ArgumentException($"option --clock: expected wall or cpu, got '{clock}'");
        return new Args(quick, part is "all" or "kernels", steps, accuracy, Int("--threads", 2), Int("--rounds", quick ? 3 : 9),
            Int("--epochs", 5), methods, !quick, problems, clock == "cpu", given?.Where(StepMethodNames.Contains).ToArray());
    }

    public static int Run(string[] rawArgs)
    {
        var args = Parse(rawArgs);
        set_num_threads(args.Threads);
        var started = DateTime.UtcNow;
        var machine = Results.MachineLine();
        var command = "dotnet run -c Release --project bench/NaturalGradient.Bench -- perf " + string.Join(" ", rawArgs);
        Console.WriteLine($"perf: {command}\n{machine}");
        var md = new StringBuilder("# Performance: step ratios and time to accuracy\n\n");
        md.AppendLine(string.Create(Inv, $"`{command}`, {started:yyyy-MM-dd HH:mm} UTC, {args.Threads} torch threads, float32.  "));
        md.AppendLine($"Machine: {machine}.  ");
        md.AppendLine($"Load (`uptime`) at the start: {Uptime()}.").AppendLine();
        var json = new Dictionary<string, object?> { ["mode"] = "perf", ["command"] = command, ["machine"] = Results.Machine(), ["uptime_start"] = Uptime() };

        // Saved after every problem and every run, so that an interrupted benchmark keeps what it measured.
        void SavePartial(string key, object value)
        {
            json[key] = value;
            Results.Save("perf", json, md + $"\n(partial: the run was still going at {DateTime.UtcNow:HH:mm} UTC)\n", quiet: true);
        }
        if (args.Kernels) json["kernels"] = RefreshKernels.Run(args.Quick ? 9 : 21, md);
        if (args.Steps) json["steps"] = StepPart(args, md, v => SavePartial("steps", v));
        if (args.Accuracy) json["accuracy"] = AccuracyPart(args, md, v => SavePartial("accuracy", v));
        md.AppendLine($"Load (`uptime`) at the end: {Uptime()}.");
        json["uptime_end"] = Uptime();
        Results.Save("perf", json, md.ToString());
        return 0;
    }

    private static string Uptime()
    {
        try { return File.ReadAllText("/proc/loadavg").Trim(); } catch (IOException) { return "n/a"; }
    }

    /// <summary>The step part's MLP 784-512-512-10 (ReLU, float32), the same initial weights on every call (seed 0).</summary>
    internal static nn.Module<Tensor, Tensor> Mlp()
    {
        manual_seed(0);
        return ModelFactory.Mlp(new long[] { 784 }, 10, new[] { 512, 512 }, Activation.Relu, ScalarType.Float32);
    }

    private static List<StepProblem> Problems(IReadOnlyCollection<string> selected, out Dataset? data, out string dataNote)
    {
        data = null;
        dataNote = "Fashion-MNIST training images (the first batch)";
        try { data = DatasetCatalog.Load("fashion-mnist", new DataOptions()); }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException or FileNotFoundException)
        {
            dataNote = $"synthetic inputs (Fashion-MNIST not found: {e.Message.Split('\n')[0]}; apt-get install -y dataset-fashion-mnist)";
        }
        manual_seed(0);
        Tensor mx = data is null ? randn(256, 784) : data.TrainX.narrow(0, 0, 256).reshape(256, -1).to_type(ScalarType.Float32);
        Tensor my = data is null ? randint(0, 10, new long[] { 256 }) : data.TrainY.narrow(0, 0, 256);
        var mlp = new[] { new LayerShape(784, 512), new LayerShape(512, 512), new LayerShape(512, 10) };
        var problems = new List<StepProblem>();
        if (selected.Contains("mlp256")) problems.Add(new("MLP 784-512-512-10, batch 256", "mlp", Mlp, mx, my, new CategoricalLikelihood(), mlp));
        if (selected.Contains("mlp128")) problems.Add(new("MLP 784-512-512-10, batch 128", "mlp", Mlp, mx.narrow(0, 0, 128), my.narrow(0, 0, 128), new CategoricalLikelihood(), mlp));
        if (!selected.Contains("figure5")) return problems;
        var fx = randn(128, 16);
        var fy = randn(128, 1);
        foreach (int depth in new[] { 1, 2, 4, 8, 16 })
        {
            var shapes = new List<LayerShape> { new(16, 20) };
            for (int i = 1; i < depth; i++) shapes.Add(new(20, 20));
            shapes.Add(new(20, 1));
            int d = depth;
            problems.Add(new($"figure 5: depth {depth} × 20, batch 128", "figure5", () => Figure5Net(d), fx, fy, new GaussianLikelihood(), shapes));
        }
        return problems;
    }

    /// <summary>The step part's figure-5 net: a tanh MLP of <paramref name="depth"/> hidden layers of 20 units, 16 inputs, 1 output (float32, seed 0).</summary>
    internal static nn.Module<Tensor, Tensor> Figure5Net(int depth)
    {
        manual_seed(0);
        return ModelFactory.Mlp(new long[] { 16 }, 1, Enumerable.Repeat(20, depth).ToArray(), Activation.Tanh, ScalarType.Float32);
    }

    private static object StepPart(Args args, StringBuilder md, Action<object> savePartial)
    {
        var problems = Problems(args.Problems, out var data, out var dataNote);
        using var _ = data;
        md.AppendLine("## Step time over an SGD step").AppendLine();
        md.AppendLine(string.Create(Inv, $"Interleaved rounds in one process: each round, every configuration takes a block of {StepConfigs.BlockSteps} steps on the MLP (one EKFAC eigenbasis period, two K-FAC inverse periods) and of {StepConfigs.SmallNetBlockSteps} on the figure-5 nets (a whole number of factor, inverse and eigenbasis periods), lengthened to a whole multiple of that for which SGD's block lasts at least {InterleavedSteps.MinimumBlockMs:F0} ms (given under each problem's heading), and a GEMM of the first layer's shape is timed; "));
        md.AppendLine(string.Create(Inv, $"ratio = median over {args.Rounds} rounds of (block time / SGD's time in that round, the mean of an SGD block at the round's start and one at its end), p10–p90 in brackets; one untimed warm-up round. "));
        md.AppendLine("SGD: torch.optim.SGD, momentum 0.9. Natural-gradient settings: momentum 0.9, constant damping 0.01, empirical Fisher, no KL clip, ");
        md.AppendLine($"K-FAC inverses every {StepConfigs.InversePeriod} steps, EKFAC's eigenbasis every {KfacOptions.DefaultEigenbasisUpdatePeriod} (ekfac-t10: every {StepConfigs.InversePeriod}), factors every {StepConfigs.DefaultFactorPeriod} (the library's defaults; -f1: every step) (kfac: Cholesky; kfac-eigen: eigh; -bf16: bfloat16 factor GEMMs; -bf16inv: the solve's products in bfloat16, floor counted at the float32 GEMM rate), Hessian-free exactly {StepConfigs.CgIterations} CG iterations. ");
        md.AppendLine("optimizer = `NaturalGradientDescent.Step`; preconditioner = `Backward` + `Precondition` + torch.optim.SGD. ");
        if (args.CpuClock) md.AppendLine("Clock: process CPU time summed over threads (`--clock cpu`), not wall time: step times, GEMM rate and floors are per CPU-second. ");
        md.AppendLine("FLOP floor = (SGD step as measured + the method's extra flops at the measured GEMM rate) / SGD step (bench/NaturalGradient.Bench/Perf/FlopModel.cs); " +
            "on the optimizer path the extra flops are net of the weight gradients that the rows replace (no backward product for them).");
        md.AppendLine($"MLP inputs: {dataNote}; figure-5 nets: synthetic regression (16 inputs, 1 output).").AppendLine();
        var all = new List<object>();
        var summary = new Dictionary<string, List<(string Problem, StepFigure F)>>();
        var leanSummary = new List<(string Problem, string Method, double Library, double Lean, double Agreement, double LibraryTensors, double LeanTensors)>();
        foreach (var p in problems)
        {
            var methods = args.StepMethods ?? (p.Group == "mlp"
                ? new[] { "adam", "diag", "tengrad", "kfac", "kfac-f1", "kfac-bf16", "kfac-eigen", "kfac-bf16inv", "ekfac", "ekfac-t10", "ekfac-f1", "ekfac-bf16", "ekfac-bf16inv", "hf", "auto", "kfac-lean", "ekfac-lean", "tengrad-lean", "diag-lean" }
                : new[] { "tengrad", "kfac", "kfac-f1", "auto", "kfac-lean", "tengrad-lean" });
            Console.WriteLine($"{p.Name}:");
            // The lean steps must do the library's math: same weights after LeanCheckSteps steps (float32 round-off).
            var agreement = LeanStep.Methods.Where(m => methods.Contains(m) && methods.Contains(m + "-lean"))
                .ToDictionary(m => m, m => LeanCheck.RelativeDifference(p, m, LeanCheckSteps));
            foreach (var (m, d) in agreement) Console.WriteLine(string.Create(Inv, $"  {m} lean step vs library after {LeanCheckSteps} steps: relative difference {d:E1}"));
            var (figures, rate, blockSteps) = InterleavedSteps.Run(p, methods, bothPaths: true, args.Rounds, StepConfigs.BlockStepsFor(p.Group), Console.WriteLine, args.CpuClock);
            double sgdMs = figures.First(f => f.Method == "sgd").MedianMs;
            Console.WriteLine(string.Create(Inv, $"  blocks of {blockSteps} steps"));
            md.AppendLine(string.Create(Inv, $"### {p.Name}")).AppendLine();
            md.AppendLine(string.Create(Inv, $"SGD step {sgdMs:F2} ms (median over rounds); GEMM rate {rate:F1} GFLOP/s (float32, {p.Batch} × {p.Layers[0].InBar} · {p.Layers[0].InBar} × {p.Layers[0].Out}); blocks of {blockSteps} steps.")).AppendLine();
            md.AppendLine("| method | path | step (ms) | step / SGD step [p10–p90] | FLOP floor | ratio / floor | extra GFLOP per step | tensors per step |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|");
            foreach (var f in figures)
            {
                string floor = f.FloorRatio is { } fl ? fl.ToString("F2", Inv) : "–";
                string over = f.FloorRatio is { } fl2 ? (f.RatioToSgd / fl2).ToString("F2", Inv) : "–";
                md.AppendLine(string.Create(Inv, $"| {f.Method} | {f.Path} | {f.MedianMs:F2} | {f.RatioToSgd:F2} [{f.RatioP10:F2}–{f.RatioP90:F2}] | {floor} | {over} | {f.ExtraGflop:F3} | {f.TensorsPerStep:F1} |"));
                Console.WriteLine(string.Create(Inv, $"  {f.Label,-28} {f.RatioToSgd,6:F2}× sgd [{f.RatioP10:F2}–{f.RatioP90:F2}]  floor {floor}  tensors/step {f.TensorsPerStep:F1}"));
                all.Add(new
                {
                    problem = p.Name, group = p.Group, batch = p.Batch, method = f.Method, path = f.Path, median_ms = f.MedianMs, ratio_to_sgd = f.RatioToSgd,
                    ratio_p10 = f.RatioP10, ratio_p90 = f.RatioP90, flop_floor = f.FloorRatio, extra_gflop = f.ExtraGflop, tensors_per_step = f.TensorsPerStep, gemm_gflops = rate, sgd_ms = sgdMs, rounds = f.Rounds,
                });
                if (!summary.TryGetValue(f.Label, out var list)) summary[f.Label] = list = new();
                list.Add((p.Name, f));
            }
            md.AppendLine();
            // Optimizer path over preconditioner path, per method.
            foreach (var method in figures.Select(f => f.Method).Distinct())
            {
                var o = figures.FirstOrDefault(f => f.Method == method && f.Path == "optimizer");
                var q = figures.FirstOrDefault(f => f.Method == method && f.Path == "preconditioner");
                if (o is not null && q is not null)
                    md.AppendLine(string.Create(Inv, $"- {method}: optimizer path / preconditioner path = {o.RatioToSgd / q.RatioToSgd:F2}"));
            }
            md.AppendLine();
            foreach (var method in LeanStep.Methods)
            {
                var o = figures.FirstOrDefault(f => f.Method == method && f.Path == "optimizer");
                var l = figures.FirstOrDefault(f => f.Method == method && f.Path == "lean");
                if (o is null || l is null) continue;
                md.AppendLine(string.Create(Inv, $"- {method}: library (optimizer path) / lean step = {o.RatioToSgd / l.RatioToSgd:F2} (lean step {l.RatioToSgd:F2}× SGD; weights after {LeanCheckSteps} steps agree to {agreement[method]:E1} relative)"));
                leanSummary.Add((p.Name, method, o.RatioToSgd, l.RatioToSgd, agreement[method], o.TensorsPerStep, l.TensorsPerStep));
            }
            md.AppendLine();
            savePartial(all);
        }
        if (leanSummary.Count > 0)
        {
            md.AppendLine("### Library step over the lean step").AppendLine();
            md.AppendLine("The lean steps (bench/NaturalGradient.Bench/Perf/LeanSteps.cs) do the same math in a minimal TorchSharp step; ");
            md.AppendLine(string.Create(Inv, $"their weights after {LeanCheckSteps} steps from the same start are compared with the library's (relative difference).")).AppendLine();
            md.AppendLine("| problem | method | library / SGD | lean / SGD | library / lean | weights agree to | tensors per step, library / lean |");
            md.AppendLine("|---|---|---:|---:|---:|---:|---:|");
            foreach (var (problem, method, lib, lean, diff, libTensors, leanTensors) in leanSummary)
                md.AppendLine(string.Create(Inv, $"| {problem} | {method} | {lib:F2} | {lean:F2} | {lib / lean:F2} | {diff:E1} | {libTensors:F0} / {leanTensors:F0} |"));
            md.AppendLine();
        }
        var flatness = summary.Where(e => e.Key != "sgd")
            .Select(e => (Label: e.Key, Ratios: e.Value.Where(x => x.Problem.StartsWith("figure 5")).Select(x => x.F.RatioToSgd).ToList()))
            .Where(e => e.Ratios.Count >= 2).ToList();
        if (flatness.Count == 0) return all;   // no figure-5 problem in this run
        md.AppendLine("### Figure-5 nets: flatness over depth").AppendLine();
        md.AppendLine("| configuration | ratio at depth 1, 2, 4, 8, 16 | max / min |");
        md.AppendLine("|---|---|---:|");
        foreach (var (label, fig5) in flatness)
            md.AppendLine(string.Create(Inv, $"| {label} | {string.Join(", ", fig5.Select(v => v.ToString("F2", Inv)))} | {fig5.Max() / fig5.Min():F2} |"));
        md.AppendLine();
        return all;
    }

    private static object AccuracyPart(Args args, StringBuilder md, Action<object> savePartial)
    {
        Dataset data;
        try { data = DatasetCatalog.Load("fashion-mnist", new DataOptions()); }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidOperationException)
        {
            throw new ArgumentException($"the time-to-accuracy part needs Fashion-MNIST (apt-get install -y dataset-fashion-mnist): {e.Message.Split('\n')[0]}");
        }
        using var _ = data;
        var ds = data.To(ScalarType.Float32);
        md.AppendLine("## Time to 85 % and 88 % Fashion-MNIST test accuracy").AppendLine();
        md.AppendLine(string.Create(Inv, $"MLP 784-512-512-10 (ReLU, float32), batch {TimeToAccuracy.Batch}, {args.Threads} torch threads, at most {args.Epochs} epochs; only the steps are timed, "));
        md.AppendLine(string.Create(Inv, $"test accuracy (10,000 images) every {TimeToAccuracy.EvalEvery} steps outside the timer; same initial weights and batch order for every run. "));
        md.AppendLine("Momentum " + TimeToAccuracy.Momentum.ToString("G3", Inv) + " (Adam β = 0.9, 0.999); natural-gradient methods: empirical Fisher, damping " + TimeToAccuracy.Damping.ToString("G3", Inv) + ", KL clip " + TimeToAccuracy.KlClip.ToString("G3", Inv) + " (" + TimeToAccuracy.ClipForm switch
        {
            NaturalGradient.Optim.KlClipForm.StepQuadraticForm => "of the applied step",
            NaturalGradient.Optim.KlClipForm.PreconditionedGradient => "η²Δᵀg before momentum",
            _ => "K-FAC and EKFAC: η²Δᵀg before momentum; the others: of the applied step",
        } + "), " + (TimeToAccuracy.InversePeriod is { } tinv ? $"inverses every {tinv} steps" : $"K-FAC's inverses every {KfacOptions.DefaultInverseUpdatePeriod} steps and EKFAC's eigenbasis every {KfacOptions.DefaultEigenbasisUpdatePeriod} (the library's defaults)") + " and factors every " + TimeToAccuracy.FactorPeriod + (TimeToAccuracy.FactorPrecision == NaturalGradient.Curvature.Kfac.KfacFactorPrecision.Bfloat16 ? " by bfloat16 GEMMs" : "") + " (K-FAC: Cholesky), HF 10 CG iterations. ");
        md.AppendLine(args.FullGrid
            ? $"Each method: the best (least time to 85 %, then to 88 %) of its learning-rate grid, after {TimeToAccuracy.WarmupSteps} untimed warm-up steps per method. " +
              $"All runs (every method and lr) train in lockstep, {TimeToAccuracy.EvalEvery} steps each in turn, so that they share the machine's conditions."
            : "Quick run: one learning rate per method (the middle of its grid), not the best of the grid.");
        md.AppendLine().AppendLine("| method | lr grid | best lr | time to 85 % (s) | steps | time to 88 % (s) | steps | best test acc. | 85 % time / Adam's | 88 % time / Adam's |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        var runs = new List<AccuracyRun>();
        var best = new Dictionary<string, AccuracyRun>();
        var planned = new List<(string Method, double LearningRate)>();
        foreach (var method in args.AccuracyMethods)
        {
            var grid = TimeToAccuracy.Grid[method];
            var lrs = args.FullGrid ? grid : new[] { grid[grid.Length / 2] };
            // Untimed: the method's code paths, kernels and allocator warmed once, so that no run pays for it.
            TimeToAccuracy.Warmup(ds, method, lrs[0], TimeToAccuracy.WarmupSteps);
            planned.AddRange(lrs.Select(lr => (method, lr)));
        }
        var results = TimeToAccuracy.TrainInterleaved(ds, planned, args.Epochs, Console.WriteLine, run =>
        {
            runs.Add(run);
            Console.WriteLine(string.Create(Inv, $"{run.Method} lr {run.LearningRate:G3}: 85 % after {Fmt(run.SecondsTo85)} s ({run.StepsTo85?.ToString() ?? "–"} steps), 88 % after {Fmt(run.SecondsTo88)} s; best {run.BestTestAccuracy:P1}{(run.Note is null ? "" : "; " + run.Note)}"));
            savePartial(runs.Select(RunJson).ToList());
        });
        // In grid order (runs finish in any order): on a tie the earlier learning rate of the grid stays the best.
        runs.Clear();
        runs.AddRange(results);
        foreach (var run in results)
            if (!best.TryGetValue(run.Method, out var b) || Better(run, b)) best[run.Method] = run;
        best.TryGetValue("adam", out var adam);
        foreach (var method in args.AccuracyMethods)
        {
            var r = best[method];
            string Ratio(double? t, double? a) => t is { } x && a is { } y ? (x / y).ToString("F2", Inv) : "–";
            md.AppendLine(string.Create(Inv,
                $"| {method} | {string.Join(", ", TimeToAccuracy.Grid[method].Select(v => v.ToString("G3", Inv)))} | {r.LearningRate:G3} | {Fmt(r.SecondsTo85)} | {r.StepsTo85?.ToString() ?? "–"} | {Fmt(r.SecondsTo88)} | {r.StepsTo88?.ToString() ?? "–"} | {r.BestTestAccuracy:P1} | {Ratio(r.SecondsTo85, adam?.SecondsTo85)} | {Ratio(r.SecondsTo88, adam?.SecondsTo88)} |"));
        }
        md.AppendLine();
        return runs.Select(RunJson).ToList();

        object RunJson(AccuracyRun r) => new
        {
            method = r.Method, lr = r.LearningRate, seconds_to_85 = r.SecondsTo85, steps_to_85 = r.StepsTo85, seconds_to_88 = r.SecondsTo88, steps_to_88 = r.StepsTo88,
            best_test_accuracy = r.BestTestAccuracy, steps = r.Steps, train_seconds = r.TrainSeconds, note = r.Note,
            best_of_grid = best.TryGetValue(r.Method, out var b) && ReferenceEquals(b, r),
            curve = r.Curve.Select(c => new { step = c.Step, seconds = c.Seconds, test_accuracy = c.Accuracy }),
        };
    }

    private static bool Better(AccuracyRun a, AccuracyRun b) =>
        (a.SecondsTo85 ?? double.MaxValue, a.SecondsTo88 ?? double.MaxValue, -a.BestTestAccuracy).CompareTo(
            (b.SecondsTo85 ?? double.MaxValue, b.SecondsTo88 ?? double.MaxValue, -b.BestTestAccuracy)) < 0;

    private static string Fmt(double? v) => v is { } x ? x.ToString("F1", Inv) : "–";
}
