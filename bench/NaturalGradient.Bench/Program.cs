// NaturalGradient benchmarks (run in Release). Figures are printed, the raw JSON goes to results/bench/<mode>.json and a
// Markdown summary to results/bench/<mode>.md (not committed; bench/results/ holds the copies the docs quote).
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- steps [--quick]        every method's step time as a ratio to SGD's
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- memory [--methods a,b] [--steps 2000] [--hidden 32,16]  RSS at steps 100, 1,000 and the last (exit 1 if growth ≥ 5%)
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- micro [--quick]        BenchmarkDotNet kernels (in-process)
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- perf [--quick] [--part all|kernels|steps|accuracy] [--methods adam,sgd,kfac,…]
//        [--problems mlp256,mlp128,figure5] [--threads 2] [--rounds N] [--epochs 5] [--clock wall|cpu] [--kl-clip 1e-3] [--kl-clip-form gradient|step]  [--eval-every 50] [--inverse-period N (default: K-FAC 10, EKFAC 20)] [--factor-period 3]   step ratios to SGD (both paths, FLOP floors) and time to 85/88 % test accuracy
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- loop --method kfac [--path optimizer|preconditioner|lean] [--steps 1000]
//        [--threads 2] [--batch 256] [--depth D (a figure-5 net)]   one step configuration of perf on its own (for a profiler): ms per step, minor page faults per step
//   dotnet run -c Release --project bench/NaturalGradient.Bench -- hf-precond --data weather|wine|fashion-mnist [--steps 60] [--every 10]
//        [--damping 0.01] [--tols 1e-1,1e-2,1e-3] [--variants none,mc-fresh,…]   CG iterations of Hessian-free's solve with and without K-FAC preconditioners
// Every mode takes --allocator retain|default: glibc keeps freed memory as natgrad sets it (NativeAllocator, the default)
// or runs with glibc's own thresholds.
using NaturalGradient.Bench.Perf;
using NaturalGradient.Bench;

int allocatorAt = Array.IndexOf(args, "--allocator");
string allocator = allocatorAt < 0 ? "retain" : allocatorAt + 1 < args.Length ? args[allocatorAt + 1] : "";
if (allocator is not ("retain" or "default"))
{
    Console.Error.WriteLine($"bench: error: option --allocator: expected retain or default, got '{allocator}'");
    return 2;
}
if (allocatorAt >= 0) args = args.Where((_, i) => i != allocatorAt && i != allocatorAt + 1).ToArray();
if (allocator == "retain") NaturalGradient.Numerics.NativeAllocator.RetainFreedMemory();   // as natgrad does, before the first tensor

var mode = args.FirstOrDefault() ?? "steps";
bool quick = args.Contains("--quick");
int methodsAt = Array.IndexOf(args, "--methods");
var methods = methodsAt >= 0 && methodsAt + 1 < args.Length
    ? args[methodsAt + 1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
    : new[] { "tengrad", "kfac" };
TorchSharp.torch.set_num_threads(1);
try
{
    return mode switch
    {
        "steps" => KnownOptions(args, "steps", "--quick") ?? StepRatios.Run(quick),
        "memory" => KnownOptions(args, "memory", "--methods", "--steps", "--hidden") ?? MemoryFlatness.Run(methods, StepsOption(args), HiddenOption(args)),
        "micro" => KnownOptions(args, "micro", "--quick") ?? Micro.Run(quick),
        "perf" => PerfCommand.Run(args.Skip(1).ToArray()),
        "loop" => StepLoop.Run(args.Skip(1).ToArray()),
        "hf-precond" => HfPreconditionerStudy.Run(args.Skip(1).ToArray()),
        _ => Usage(),
    };
}
catch (Exception e) when (e is ArgumentException or IOException or NaturalGradient.Training.Data.DataFormatException)
{
    Console.Error.WriteLine($"bench: error: {e.Message}");
    return 2;
}

static int StepsOption(string[] args)
{
    int at = Array.IndexOf(args, "--steps");
    if (at < 0) return 2000;
    return at + 1 < args.Length && int.TryParse(args[at + 1], out var n) ? n : throw new ArgumentException("option --steps needs an integer");
}

// Null when every option of the mode's arguments is one it takes (a value after an option is skipped for those that take one).
static int? KnownOptions(string[] args, string mode, params string[] known)
{
    for (int i = 1; i < args.Length; i++)
    {
        if (!known.Contains(args[i])) throw new ArgumentException($"unknown option '{args[i]}' ({mode} takes {string.Join(", ", known)})");
        if (args[i] != "--quick") i++;
    }
    return null;
}

static int[]? HiddenOption(string[] args)
{
    int at = Array.IndexOf(args, "--hidden");
    if (at < 0) return null;
    var parts = at + 1 < args.Length ? args[at + 1].Split(',') : Array.Empty<string>();
    var widths = parts.Select(p => int.TryParse(p, out var w) && w > 0 ? w : -1).ToArray();
    return widths.Length > 0 && widths.All(w => w > 0) ? widths
        : throw new ArgumentException($"option --hidden: expected positive integers separated by commas, got '{(at + 1 < args.Length ? args[at + 1] : "")}'");
}

static int Usage()
{
    Console.Error.WriteLine("usage: NaturalGradient.Bench steps [--quick] | memory [--methods a,b] [--steps N] [--hidden W,W] | micro [--quick] | perf [--quick] [--part all|kernels|steps|accuracy] [--methods a,b] [--problems mlp256,mlp128,figure5] [--threads N] [--rounds N] [--epochs N] [--clock wall|cpu] [--kl-clip κ] [--kl-clip-form step|gradient] [--eval-every N] [--inverse-period N] [--factor-period N] [--damping λ] [--momentum μ] [--factor-precision model|bfloat16] | loop --method M [--path optimizer|preconditioner|lean] [--steps N] [--threads N] [--batch N] [--depth D] | hf-precond --data NAME [--steps N] [--every N] [--offset N] [--variants a,b]; every mode: [--allocator retain|default]");
    return 2;
}
