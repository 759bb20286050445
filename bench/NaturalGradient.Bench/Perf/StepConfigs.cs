using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Training;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench.Perf;

/// <summary>One timed configuration: a method on one path, with its own model (same initial weights for all).</summary>
internal sealed class StepConfig : IDisposable
{
    private readonly List<IDisposable> _owned = new();

    public required string Method { get; init; }
    public required string Path { get; init; }                // "sgd" (the reference), "optimizer", "preconditioner" or "lean" (LeanStep)
    public required Action<Tensor, Tensor> Step { get; init; }
    /// <summary>The configuration's own model (for the lean steps' agreement check).</summary>
    public nn.Module<Tensor, Tensor>? Model { get; init; }
    public string Label => Path is "optimizer" or "preconditioner" or "lean" ? $"{Method} ({Path})" : Method;

    public T Own<T>(T d) where T : IDisposable { _owned.Add(d); return d; }

    public void Dispose()
    {
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
    }
}

/// <summary>
/// Builds the configurations the benchmark times: SGD with momentum 0.9 (torch.optim.SGD, the reference), Adam, and
/// every natural-gradient method both through <see cref="NaturalGradientDescent.Step"/> ("optimizer" path) and through
/// <see cref="NaturalGradientPreconditioner"/> followed by torch.optim.SGD ("preconditioner" path). Settings: momentum
/// 0.9, constant damping 0.01, empirical Fisher, no KL clip, K-FAC inverses every 10 steps, EKFAC's eigenbasis every
/// 20 ("ekfac-t10": every 10), factors every <see cref="DefaultFactorPeriod"/> steps (the library's defaults,
/// <see cref="KfacOptions"/>) (K-FAC:
/// Cholesky, and eigh as "kfac-eigen"; "kfac-bf16" and "ekfac-bf16" with bfloat16 factor GEMMs; "kfac-bf16inv" and
/// "ekfac-bf16inv" with the solve's products in bfloat16 (<see cref="KfacInversePrecision.Bfloat16"/>); "kfac-f1" and "ekfac-f1"
/// with factors every step, otherwise as kfac and ekfac), Hessian-free exactly 10 CG iterations (tolerance 1e-10, no warm start).
/// </summary>
internal static class StepConfigs
{
    /// <summary>K-FAC's inverse period (the "inverses every 10"; the library's default) and HF's CG iterations.</summary>
    public const int InversePeriod = 10, CgIterations = 10;

    /// <summary>Steps per timed block: one EKFAC eigenbasis period at the library's default, two K-FAC inverse periods.</summary>
    public const int BlockSteps = KfacOptions.DefaultEigenbasisUpdatePeriod;

    /// <summary>
    /// Steps per timed block on the figure-5 nets (0.2–10 ms steps): 60, a whole number of factor periods (3), K-FAC
    /// inverse periods (10) and EKFAC eigenbasis periods (20), so every block holds the same mix of steps;
    /// <see cref="InterleavedSteps"/> takes a whole multiple of it where SGD's block would last less than
    /// <see cref="InterleavedSteps.MinimumBlockMs"/>.
    /// </summary>
    public const int SmallNetBlockSteps = 60;

    /// <summary>The block length for a problem group ("mlp" or "figure5").</summary>
    public static int BlockStepsFor(string group) => group == "figure5" ? SmallNetBlockSteps : BlockSteps;

    public static readonly string[] NaturalGradientMethods = { "diag", "tengrad", "kfac", "kfac-f1", "kfac-bf16", "kfac-eigen", "kfac-bf16inv", "ekfac", "ekfac-t10", "ekfac-f1", "ekfac-bf16", "ekfac-bf16inv", "hf", "auto" };

    /// <summary>
    /// Configurations timed only when <c>--methods</c> names them: K-FAC (Cholesky and eigh) and EKFAC with every
    /// refresh's factorisations run one after another on the step's threads instead of side by side
    /// (<see cref="NaturalGradient.Numerics.FactorizationQueue.SideBySide"/> off during their steps).
    /// </summary>
    public static readonly string[] SerialFactorizationMethods = { "kfac-serial", "kfac-eigen-serial", "ekfac-serial" };

    /// <summary>The suffix of <see cref="SerialFactorizationMethods"/>.</summary>
    public const string SerialSuffix = "-serial";

    /// <summary>The configuration a "-serial" one times with its factorisations one after another ("kfac-serial" → "kfac").</summary>
    public static string Factorized(string method) =>
        method.EndsWith(SerialSuffix, StringComparison.Ordinal) ? method[..^SerialSuffix.Length] : method;

    /// <summary>
    /// T_inv of a configuration: the EKFAC ones but "ekfac-t10" take the library's EKFAC default
    /// (<see cref="KfacOptions.DefaultEigenbasisUpdatePeriod"/>, 20), the rest <see cref="InversePeriod"/>.
    /// </summary>
    public static int InversePeriodOf(string method) =>
        method.StartsWith("ekfac", StringComparison.Ordinal) && method != "ekfac-t10" ? KfacOptions.DefaultEigenbasisUpdatePeriod : InversePeriod;

    /// <summary>The library's default K-FAC/EKFAC factor period T_f, used by every K-FAC/EKFAC configuration but the "-f1" ones.</summary>
    public static int DefaultFactorPeriod { get; } = new KfacOptions().FactorUpdatePeriod;

    /// <summary>The factor period T_f of a configuration: 1 for "kfac-f1" and "ekfac-f1", else <see cref="DefaultFactorPeriod"/>.</summary>
    public static int FactorPeriod(string method) => method.EndsWith("-f1", StringComparison.Ordinal) ? 1 : DefaultFactorPeriod;

    /// <summary>The suffix of the configurations whose K-FAC/EKFAC solve runs in bfloat16 ("kfac-bf16inv", "ekfac-bf16inv").</summary>
    public const string Bfloat16SolveSuffix = "-bf16inv";

    /// <summary><see cref="KfacInversePrecision.Bfloat16"/> for a "-bf16inv" configuration, else the model's precision.</summary>
    public static KfacInversePrecision InversePrecisionOf(string method) =>
        method.EndsWith(Bfloat16SolveSuffix, StringComparison.Ordinal) ? KfacInversePrecision.Bfloat16 : KfacInversePrecision.Model;

    /// <summary>The method a configuration runs: "kfac-bf16inv" and "ekfac-bf16inv" are K-FAC and EKFAC.</summary>
    public static string BaseMethod(string method) =>
        method.EndsWith(Bfloat16SolveSuffix, StringComparison.Ordinal) ? method[..^Bfloat16SolveSuffix.Length] : method;

    public static PreconditionerOptions Options(string method) => OptionsOf(Factorized(method));

    private static PreconditionerOptions OptionsOf(string method) => new()
    {
        Structure = method switch
        {
            "diag" => CurvatureStructure.Diagonal,
            "tengrad" => CurvatureStructure.Tengrad,
            "kfac" or "kfac-f1" or "kfac-bf16" or "kfac-eigen" or "kfac-bf16inv" => CurvatureStructure.Kfac,
            "ekfac" or "ekfac-t10" or "ekfac-f1" or "ekfac-bf16" or "ekfac-bf16inv" => CurvatureStructure.Ekfac,
            "hf" => CurvatureStructure.HessianFree,
            "auto" => CurvatureStructure.Auto,
            _ => throw new ArgumentException($"unknown method '{method}'"),
        },
        Damping = 1e-2,
        Kfac = new KfacOptions
        {
            InverseUpdatePeriod = InversePeriodOf(method),
            FactorUpdatePeriod = FactorPeriod(method),
            InverseMethod = method == "kfac-eigen" ? KfacInverseMethod.Eigen : KfacInverseMethod.Cholesky,
            FactorPrecision = method.EndsWith("-bf16", StringComparison.Ordinal) ? KfacFactorPrecision.Bfloat16 : KfacFactorPrecision.Model,
            InversePrecision = InversePrecisionOf(method),
        },
        HessianFree = new HessianFreeOptions { MaxIterations = CgIterations, RelativeTolerance = 1e-10, WarmStart = false },
    };

    public static List<StepConfig> Build(Func<nn.Module<Tensor, Tensor>> model, ILikelihood likelihood, IReadOnlyList<string> methods, bool bothPaths)
    {
        const double lr = 1e-3, momentum = 0.9;
        var configs = new List<StepConfig>();

        {
            var net = model();
            var sgd = optim.SGD(net.parameters(), lr, momentum);
            var c = new StepConfig
            {
                Method = "sgd", Path = "sgd",
                Step = (x, y) => { sgd.zero_grad(); likelihood.Loss(net.call(x), y).backward(); sgd.step(); },
            };
            c.Own(net); c.Own(sgd);
            configs.Add(c);
        }
        if (methods.Contains("adam"))
        {
            var net = model();
            var adam = optim.Adam(net.parameters(), lr);
            var c = new StepConfig
            {
                Method = "adam", Path = "sgd",
                Step = (x, y) => { adam.zero_grad(); likelihood.Loss(net.call(x), y).backward(); adam.step(); },
            };
            c.Own(net); c.Own(adam);
            configs.Add(c);
        }
        foreach (var method in LeanStep.Methods.Where(m => methods.Contains(m + "-lean")))
        {
            var net = model();
            var lean = new LeanStep(method, net, likelihood, lr, momentum, damping: 1e-2, InversePeriodOf(method), FactorPeriod(method));
            var c = new StepConfig { Method = method, Path = "lean", Step = lean.Step, Model = net };
            c.Own(net); c.Own(lean);
            configs.Add(c);
        }
        foreach (var method in NaturalGradientMethods.Concat(SerialFactorizationMethods).Where(methods.Contains))
        {
            bool serial = method != Factorized(method);
            void Factorizing(Action step)
            {
                if (!serial) { step(); return; }
                NaturalGradient.Numerics.FactorizationQueue.SideBySide = false;
                try { step(); }
                finally { NaturalGradient.Numerics.FactorizationQueue.SideBySide = true; }
            }
            {
                var net = model();
                var ngd = new NaturalGradientDescent(net, likelihood, new NaturalGradientOptions { LearningRate = lr, Momentum = momentum, Preconditioner = Options(method) });
                var c = new StepConfig { Method = method, Path = "optimizer", Step = (x, y) => Factorizing(() => ngd.Step(x, y)), Model = net };
                c.Own(net); c.Own(ngd);
                configs.Add(c);
            }
            if (!bothPaths) continue;
            {
                var net = model();
                var pre = new NaturalGradientPreconditioner(net, likelihood, Options(method));
                var sgd = optim.SGD(net.parameters(), lr, momentum);
                var c = new StepConfig
                {
                    Method = method, Path = "preconditioner",
                    Step = (x, y) => Factorizing(() => { sgd.zero_grad(); pre.Backward(net.call(x), y); pre.Precondition(); sgd.step(); }),
                };
                c.Own(net); c.Own(pre); c.Own(sgd);
                configs.Add(c);
            }
        }
        return configs;
    }
}
