using System.CommandLine;
using System.Globalization;
using NaturalGradient.Cli.Parsing;
using NaturalGradient.Cli.Reports;
using NaturalGradient.Training.Experiments.Scale;
using NaturalGradient.Training;
using TorchSharp;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// <c>natgrad scale</c> (seed 000 figure 5): time and peak memory of one optimisation step vs depth (hidden layers of
/// 20 units) and vs width, each (method, size) point measured in its own child process (<c>natgrad scale-point</c>)
/// that the parent watches against a memory budget and a wall-clock limit.
/// </summary>
internal static class ScaleCommand
{
    /// <summary>The methods of seed 000's figure 5. Names in this list that the catalog lacks are skipped with a note.</summary>
    public const string DefaultMethods = "sgd,exact,block,tengrad,kfac,hf";

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The options of <c>natgrad scale</c>.</summary>
    internal sealed class Options
    {
        public Option<string> Methods { get; } = CliOptions.Text("--methods",
            "Comma-separated methods; sgd is always measured (the reference of the ratios)", DefaultMethods, helpName: "a,b");
        public Option<string> Depths { get; } = CliOptions.Text("--depths",
            "Depth sweep: numbers of hidden layers of --width units ('none' = no depth sweep) [--quick: 1,2,4]", "1,2,4,8,16", helpName: "d,d");
        public Option<int> Width { get; } = CliOptions.Int("--width", "Hidden units per layer in the depth sweep", 20);
        public Option<string> Widths { get; } = CliOptions.Text("--widths",
            "Width sweep: hidden units of --depth layers ('none' = no width sweep) [--quick: 16,64,256]", "16,32,64,128,256,512,1024", helpName: "w,w");
        public Option<int> Depth { get; } = CliOptions.Int("--depth", "Hidden layers in the width sweep", 2);
        public Option<int> Inputs { get; } = CliOptions.Int("--inputs", "Input features of the synthetic regression data", 16);
        public Option<int> BatchSize { get; } = CliOptions.Int("--batch-size", "Examples per step", 128);
        public Option<int> Warmup { get; } = CliOptions.Int("--warmup", "Untimed steps before timing", 3);
        public Option<int> Repeats { get; } = CliOptions.Int("--repeats", "Timed steps per point [--quick: 2]", 10);
        public Option<double> TimeBudgetMs { get; } = CliOptions.Double("--time-budget-ms",
            "Time budget of one step (ms): a point is stopped after (warmup + repeats) × this, and a median above it is over budget", 2000);
        public Option<double> MemoryBudgetMb { get; } = CliOptions.Double("--memory-budget-mb",
            "Resident memory budget of a point (MiB): not launched if the dense curvature alone is predicted above it, stopped when the child passes it", 4000);
        public Option<int> Threads { get; } = CliOptions.Int("--threads", "Torch intra-op threads of each measurement (1 = stable timing)", 1);
        public Option<string> Dtype { get; } = CliOptions.Text("--dtype", "Precision: float32 or float64", "float32",
            v => CliChoices.Dtype(v), helpName: "float32|float64");
        public Option<string> Fisher { get; } = CliOptions.Text("--fisher", "Fisher of the natural-gradient methods: empirical, mc or exact", "empirical",
            v => CliChoices.Fisher(v), helpName: "empirical|mc|exact");
        public Option<long> Seed { get; } = CliOptions.Long("--seed", "Seed of the initial weights and the synthetic data", 0);
        public Option<bool> Quick { get; } = new("--quick") { Description = "Quick run: depths 1,2,4, widths 16,64,256, 2 timed steps (explicit options win)" };
        public Option<bool> InProcess { get; } = new("--in-process") { Description = "Measure in this process (no memory isolation; tests)", Hidden = true };
        public Option<string> Out { get; } = CliOptions.Text("--out", "Output folder", "runs/scale", helpName: "dir");

        public IEnumerable<Option> All => new Option[]
        {
            Methods, Depths, Width, Widths, Depth, Inputs, BatchSize, Warmup, Repeats, TimeBudgetMs, MemoryBudgetMb,
            Threads, Dtype, Fisher, Seed, Quick, InProcess, Out,
        };
    }

    /// <summary>A validated <c>natgrad scale</c> configuration.</summary>
    internal sealed record Config(
        IReadOnlyList<string> Methods, IReadOnlyList<string> Notes, IReadOnlyList<int> Depths, int Width, IReadOnlyList<int> Widths,
        int Depth, int Inputs, ProbeOptions Probe, int Threads, string Fisher, double TimeBudgetMs, double MemoryBudgetMb,
        bool Quick, bool InProcess, string OutDir)
    {
        /// <summary>Wall-clock limit of one point after its set-up: (warm-up + timed steps) × the per-step budget.</summary>
        public TimeSpan PointLimit => TimeSpan.FromMilliseconds(TimeBudgetMs * (Probe.Warmup + Probe.Repeats));
    }

    public static Command Create(CliContext ctx)
    {
        var options = new Options();
        var command = new Command("scale", "Time and peak memory of one optimisation step vs model depth and width (seed 000 figure 5)");
        foreach (var o in options.All) command.Add(o);
        command.SetAction(parse => Execute(ctx, parse, options));
        return command;
    }

    private static int Execute(CliContext ctx, ParseResult parse, Options options)
    {
        var c = Bind(parse, options, ctx.Catalog);
        Directory.CreateDirectory(c.OutDir);
        var commandLine = "natgrad " + string.Join(' ', parse.Tokens.Select(t => t.Value));
        var exe = c.InProcess ? null : NatgradExecutable.Resolve();
        var plan = new ScalePlan(c.Methods, c.MemoryBudgetMb, c.Probe.Dtype);

        var w = ctx.Out;
        var where = c.InProcess ? "in this process" : "one child process per point";
        w.WriteLine(string.Create(Inv, $"scale: {string.Join(", ", c.Methods)}; batch {c.Probe.BatchSize}, {c.Inputs} inputs, {DtypeName(c.Probe.Dtype)}, {c.Threads} thread(s); {c.Probe.Repeats} timed steps after {c.Probe.Warmup} warm-up; budgets {c.TimeBudgetMs:0.#} ms/step, {c.MemoryBudgetMb:0.#} MiB; {where}"));
        foreach (var note in c.Notes) w.WriteLine("scale: note: " + note);

        void Report(PointMeasurement p)
        {
            var head = string.Create(Inv, $"{p.Sweep.ToString().ToLowerInvariant(),-5} sweep  {p.Size.Depth,2} × {p.Size.Width,4} ({p.Size.Parameters,9:N0} params)  {p.Method,-8} ");
            string body;
            if (p.Status == PointStatus.Measured)
            {
                body = string.Create(Inv, $"median {p.MedianMs,9:F2} ms (p10 {p.P10Ms:F2}, p90 {p.P90Ms:F2})  peak {p.PeakMb,6:F0} MiB");
                if (double.IsFinite(p.SgdOtherMedianMs))
                    body = string.Create(Inv, $"re-timed: reference median {p.MedianMs:F2} ms (the other timing: {p.SgdOtherMedianMs:F2} ms)");
            }
            else body = p.Note;
            w.WriteLine(head + body);
        }

        PointMeasurement Measure(string method, ModelSize size) =>
            WithinBudgets(c, c.InProcess ? StepCostProbe.Measure(method, size, c.Probe, ctx.Catalog) : InChild(c, exe!, method, size, ctx.Cancellation));

        var points = new List<PointMeasurement>();
        if (c.Depths.Count > 0)
            points.AddRange(plan.Run(SweepKind.Depth, ScalePlan.DepthSweep(c.Depths, c.Width, c.Inputs), Measure, Report));
        if (c.Widths.Count > 0)
            points.AddRange(plan.Run(SweepKind.Width, ScalePlan.WidthSweep(c.Widths, c.Depth, c.Inputs), Measure, Report));

        WriteRatios(w, points);
        ScaleReport.Write(c.OutDir, points, new ScaleReport.RunInfo(commandLine, c));
        w.WriteLine($"scale: wrote {string.Join(", ", ScaleReport.Files(points))} to {c.OutDir}");
        return ExitCodes.Success;
    }

    /// <summary>The final ratios to SGD (against the faster of its two timings), one line per method and sweep.</summary>
    private static void WriteRatios(TextWriter w, IReadOnlyList<PointMeasurement> points)
    {
        foreach (var sweep in new[] { SweepKind.Depth, SweepKind.Width })
        {
            var mine = points.Where(p => p.Sweep == sweep).ToList();
            if (mine.Count == 0) continue;
            var sizes = mine.Select(p => p.Size).Distinct().ToList();
            string Size(ModelSize s) => sweep == SweepKind.Depth ? s.Depth.ToString(Inv) : s.Width.ToString(Inv);
            w.WriteLine($"step / sgd step, {sweep.ToString().ToLowerInvariant()} sweep ({(sweep == SweepKind.Depth ? "hidden layers" : "units per layer")}: {string.Join(", ", sizes.Select(Size))}):");
            foreach (var method in mine.Select(p => p.Method).Distinct().Where(m => m != "sgd"))
            {
                var cells = sizes.Select(s => mine.FirstOrDefault(p => p.Method == method && p.Size == s) is { } p
                    ? double.IsFinite(p.RatioToSgd) ? p.RatioToSgd.ToString(p.RatioToSgd < 10 ? "F1" : "F0", Inv) : p.Status == PointStatus.Skipped ? "–" : "×"
                    : "");
                w.WriteLine($"  {method,-8} {string.Join("  ", cells.Select(c => c.PadLeft(6)))}");
            }
        }
        w.WriteLine("  (× = over a budget, refused or failed; – = skipped; see scale.md)");
    }

    /// <summary>Measures one point in a child <c>natgrad scale-point</c>, killed past the memory budget or the time limit.</summary>
    internal static PointMeasurement InChild(Config c, NatgradExecutable exe, string method, ModelSize size, CancellationToken cancellation)
    {
        var limits = new ChildLimits
        {
            MemoryBudgetMb = c.MemoryBudgetMb, RunLimit = c.PointLimit, StartMarker = ScalePointCommand.TimingMarker,
            StartupLimit = TimeSpan.FromSeconds(60),
        };
        var r = ProcessRunner.Run(exe.FileName, exe.With(ScalePointCommand.Arguments(method, size, c.Probe, c.Threads, c.Fisher)), limits, cancellation);
        PointMeasurement Point(PointStatus status, string message) => new()
        {
            Method = method, Sweep = SweepKind.Depth, Size = size, Status = status, Message = message, ObservedMaxRssMb = r.MaxRssMb, Threads = c.Threads,
        };
        switch (r.End)
        {
            case ChildEnd.OverMemory:
                return Point(PointStatus.OverMemoryBudget, string.Create(Inv,
                    $"resident memory reached {r.MaxRssMb:F0} MiB > budget {c.MemoryBudgetMb:0.#} MiB after {r.Elapsed.TotalSeconds:F1} s: stopped"));
            case ChildEnd.OverTime:
                return Point(PointStatus.OverTimeBudget, string.Create(Inv,
                    $"still running after {c.PointLimit.TotalSeconds:0.#} s = ({c.Probe.Warmup} + {c.Probe.Repeats}) steps × {c.TimeBudgetMs:0.#} ms: stopped"));
            case ChildEnd.NoStart:
                return Point(PointStatus.Failed, string.Create(Inv, $"set-up did not finish within {limits.StartupLimit.TotalSeconds:0} s: stopped"));
        }
        var line = r.Stdout.LastOrDefault(l => l.TrimStart().StartsWith('{'));
        if (r.ExitCode == 0 && line is not null)
        {
            try
            {
                return PointMeasurement.FromJsonLine(line) with { Method = method, Size = size, ObservedMaxRssMb = r.MaxRssMb };
            }
            catch (FormatException e)
            {
                return Point(PointStatus.Failed, e.Message);
            }
        }
        var error = r.Stderr.FirstOrDefault(l => l.StartsWith("natgrad: error: ", StringComparison.Ordinal))?["natgrad: error: ".Length..]
                    ?? r.Stderr.LastOrDefault(l => !string.IsNullOrWhiteSpace(l))?.Trim();
        var code = r.ExitCode is > 128 and < 160 ? $"exit code {r.ExitCode} (signal {r.ExitCode - 128})" : $"exit code {r.ExitCode}";
        return Point(PointStatus.Failed, error is null ? code : $"{error} ({code})");
    }

    /// <summary>A measured point whose median step or peak memory is over its budget is recorded as such (its figures are kept).</summary>
    internal static PointMeasurement WithinBudgets(Config c, PointMeasurement p)
    {
        if (p.Status != PointStatus.Measured) return p;
        if (p.MedianMs > c.TimeBudgetMs)
            return p with { Status = PointStatus.OverTimeBudget, Message = string.Create(Inv, $"median step {p.MedianMs:F0} ms > budget {c.TimeBudgetMs:0.#} ms") };
        if (p.PeakMb > c.MemoryBudgetMb)
            return p with { Status = PointStatus.OverMemoryBudget, Message = string.Create(Inv, $"peak resident memory {p.PeakMb:F0} MiB > budget {c.MemoryBudgetMb:0.#} MiB") };
        return p;
    }

    /// <summary>Validates the options into a <see cref="Config"/>.</summary>
    /// <exception cref="UsageException">A bad value, named by its option.</exception>
    internal static Config Bind(ParseResult parse, Options o, OptimizerCatalog catalog)
    {
        bool quick = parse.GetValue(o.Quick);
        bool Given(Option option) => parse.GetResult(option) is { Implicit: false };
        int Positive(Option<int> option) => parse.GetValue(option) is var v && v >= 1 ? v : throw new UsageException($"{option.Name} must be ≥ 1, got {v}");
        double PositiveDouble(Option<double> option) => parse.GetValue(option) is var v && v > 0
            ? v : throw new UsageException(string.Create(Inv, $"{option.Name} must be > 0, got {v}"));

        var (methods, notes) = Methods(parse.GetValue(o.Methods)!, catalog);
        var depths = quick && !Given(o.Depths) ? ScalePlan.QuickDepths.ToList() : Ints(parse.GetValue(o.Depths)!, o.Depths.Name);
        var widths = quick && !Given(o.Widths) ? ScalePlan.QuickWidths.ToList() : Ints(parse.GetValue(o.Widths)!, o.Widths.Name);
        if (depths.Count + widths.Count == 0) throw new UsageException($"{o.Depths.Name} and {o.Widths.Name} are both 'none': nothing to measure");
        int warmup = parse.GetValue(o.Warmup);
        if (warmup < 0) throw new UsageException($"{o.Warmup.Name} must be ≥ 0, got {warmup}");
        var probe = new ProbeOptions
        {
            BatchSize = Positive(o.BatchSize),
            Warmup = warmup,
            Repeats = quick && !Given(o.Repeats) ? 2 : Positive(o.Repeats),
            Dtype = CliChoices.Dtype(parse.GetValue(o.Dtype)!),
            Seed = parse.GetValue(o.Seed),
            Settings = ProbeOptions.ScaleSettings(CliChoices.Fisher(parse.GetValue(o.Fisher)!)),
        };
        return new Config(methods, notes, depths, Positive(o.Width), widths, Positive(o.Depth), Positive(o.Inputs), probe, Positive(o.Threads),
            parse.GetValue(o.Fisher)!.Trim().ToLowerInvariant(), PositiveDouble(o.TimeBudgetMs), PositiveDouble(o.MemoryBudgetMb),
            quick, parse.GetValue(o.InProcess), parse.GetValue(o.Out)!.Trim());
    }

    /// <summary>
    /// The methods to measure, sgd first (it is the reference of the ratios and is added if missing). A name of the
    /// default list that the catalog lacks (e.g. hf on a build without it) is left out with a note; any other unknown
    /// name is an error.
    /// </summary>
    internal static (List<string> Methods, List<string> Notes) Methods(string text, OptimizerCatalog catalog)
    {
        var names = CliChoices.List(text).Select(n => n.ToLowerInvariant()).Distinct().ToList();
        if (names.Count == 0) throw new UsageException("--methods: the list is empty");
        var notes = new List<string>();
        var defaults = CliChoices.List(DefaultMethods);
        foreach (var n in names.Where(n => !catalog.Contains(n)).ToList())
        {
            if (!defaults.Contains(n)) throw new UsageException($"--methods: '{n}' is not one of {string.Join(", ", catalog.Names)}");
            notes.Add($"'{n}' is not registered in this build's catalog: skipped");
            names.Remove(n);
        }
        if (!names.Contains("sgd")) notes.Add("sgd added: it is the reference of the step-time ratios");
        names.Remove("sgd");
        names.Insert(0, "sgd");
        return (names, notes);
    }

    private static List<int> Ints(string text, string option)
    {
        var trimmed = text.Trim();
        if (trimmed.Length == 0 || trimmed.Equals("none", StringComparison.OrdinalIgnoreCase)) return new List<int>();
        var values = new List<int>();
        foreach (var part in trimmed.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, Inv, out var v) || v < 1)
                throw new UsageException($"{option}: '{part}' is not a positive integer");
            values.Add(v);
        }
        return values.Distinct().Order().ToList();
    }

    internal static string DtypeName(torch.ScalarType dtype) => dtype == torch.ScalarType.Float64 ? "float64" : "float32";
}
