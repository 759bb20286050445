using System.Globalization;
using System.Text;
using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench;

/// <summary>
/// How many CG iterations Hessian-free's system (G + λI) x = g needs with and without a K-FAC preconditioner, along a
/// Hessian-free training trajectory (the trainer's default MLP and hf defaults: lr 0.1, λ = 0.01, 10 CG iterations).
/// At every step each K-FAC variant absorbs the batch's statistics (its Fisher kind, its running average β and its
/// inverse period); every <c>--every</c> steps the step's system is solved from x₀ = 0 by CG with each variant to the
/// tolerances given, and the relative residual ‖g − (G + λI)x‖/‖g‖ after 10 iterations (the default budget) is recorded.
/// </summary>
/// <remarks>
/// Variants: none; K-FAC from the empirical, Monte-Carlo or exact Fisher; running average β = 0.95 with inverses every
/// 10 steps ("avg", K-FAC's defaults) or the step's own statistics (β = 0, inverses every step, "fresh"); factored
/// (π) damping, or exact damping in the eigenbasis ((G ⊗ A + λI)⁻¹, "eig").
/// Usage: hf-precond --data weather|wine|fashion-mnist [--max-train N] [--steps 60] [--every 10] [--damping 0.01]
/// [--tols 1e-1,1e-2,1e-3] [--max-iters 400] [--budget 10] [--variants a,b] [--seed 0] [--offset 0] [--spectrum]
/// Variant suffixes: -xS preconditioner damping S·λ, -tN inverses every N steps, -bX running average β = X, -ekfac EKFAC
/// blocks, -cutT K-FAC's eigenbasis only where eᴳeᴬ ≥ Tλ; "dense-block" is the exact damped per-layer GGN block inverse.
/// Systems are solved on steps s with s mod every = offset.
/// </remarks>
internal static class HfPreconditionerStudy
{
    private sealed record Variant(string Name, FisherKind? Kind, double Decay, int InversePeriod, bool Eigen, double DampingScale = 1)
    {
        public KfacSolverPreconditioner? Kfac { get; set; }

        /// <summary>EKFAC blocks (eigenbasis of K-FAC, diagonal re-estimated) instead of K-FAC's, for the "-ekfac" variants.</summary>
        public BlockDiagonalCurvature? Ekfac { get; set; }

        /// <summary>τ of a truncated eigenbasis preconditioner (directions with eᴳeᴬ &lt; τλ left unpreconditioned), or null.</summary>
        public double? Cut { get; init; }

        public bool EkfacBlocks { get; init; }

        /// <summary>The step's factors' eigendecompositions, per layer (truncated variants).</summary>
        public List<(Tensor QG, Tensor EG, Tensor QA, Tensor EA)>? Eigenbases { get; set; }
    }

    private static readonly Variant[] AllVariants =
    {
        new("none", null, 0, 1, false),
        new("emp-avg", FisherKind.Empirical, 0.95, 10, false),
        new("emp-fresh", FisherKind.Empirical, 0, 1, false),
        new("mc-avg", FisherKind.MonteCarlo, 0.95, 10, false),
        new("mc-fresh", FisherKind.MonteCarlo, 0, 1, false),
        new("exact-avg", FisherKind.Exact, 0.95, 10, false),
        new("exact-fresh", FisherKind.Exact, 0, 1, false),
        new("exact-fresh-eig", FisherKind.Exact, 0, 1, true),
        new("mc-fresh-eig", FisherKind.MonteCarlo, 0, 1, true),
        new("dense-block", null, 0, 1, false),
    };

    /// <summary>A variant by name; "NAME-xS" is NAME with the preconditioner's damping S·λ.</summary>
    private static Variant Parse(string name)
    {
        int at = name.LastIndexOf("-x", StringComparison.Ordinal);
        if (at > 0 && double.TryParse(name[(at + 2)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var scale))
            return Parse(name[..at]) with { Name = name, DampingScale = scale };
        at = name.LastIndexOf("-t", StringComparison.Ordinal);
        if (at > 0 && int.TryParse(name[(at + 2)..], NumberStyles.Integer, CultureInfo.InvariantCulture, out var period))
            return Parse(name[..at]) with { Name = name, InversePeriod = period };
        at = name.LastIndexOf("-b", StringComparison.Ordinal);
        if (at > 0 && double.TryParse(name[(at + 2)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var decay))
            return Parse(name[..at]) with { Name = name, Decay = decay };
        if (name.EndsWith("-ekfac", StringComparison.Ordinal))
            return Parse(name[..^6]) with { Name = name, EkfacBlocks = true };
        at = name.LastIndexOf("-cut", StringComparison.Ordinal);
        if (at > 0 && double.TryParse(name[(at + 4)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var cut))
            return Parse(name[..at]) with { Name = name, Cut = cut };
        return AllVariants.FirstOrDefault(v => v.Name == name) ?? throw new ArgumentException($"unknown variant '{name}'");
    }

    public static int Run(string[] args)
    {
        string data = Arg(args, "--data", "weather");
        int? maxTrain = args.Contains("--max-train") ? int.Parse(Arg(args, "--max-train", "0"), CultureInfo.InvariantCulture) : null;
        int steps = Int(args, "--steps", 60), every = Int(args, "--every", 10), maxIters = Int(args, "--max-iters", 400), budget = Int(args, "--budget", 10);
        int hidden = Int(args, "--hidden", 32), batch = Int(args, "--batch-size", 128), measureAt = Int(args, "--offset", 0);
        long seed = Int(args, "--seed", 0);
        double lambda = Dbl(args, "--damping", 0.01);
        var tols = Arg(args, "--tols", "1e-1,1e-2,1e-3").Split(',').Select(t => double.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        var names = args.Contains("--variants") ? Arg(args, "--variants", "").Split(',') : AllVariants.Select(v => v.Name).ToArray();
        var variants = names.Select(Parse).ToList();

        using var loaded = DatasetCatalog.Load(data, new DataOptions { Seed = seed, MaxTrainExamples = maxTrain });
        using var ds = loaded.To(ScalarType.Float32);
        manual_seed(seed);
        var model = ModelFactory.Mlp(ds.InputShape, ds.OutputCount, new[] { hidden }, Activation.Tanh, ScalarType.Float32);
        ILikelihood likelihood = ds.Task == TaskKind.Classification ? new CategoricalLikelihood() : new GaussianLikelihood();
        using var ngd = new NaturalGradientDescent(model, likelihood, new NaturalGradientOptions
        {
            LearningRate = 0.1, Momentum = 0,
            Preconditioner = new PreconditionerOptions
            {
                Structure = CurvatureStructure.HessianFree, Damping = lambda,
                HessianFree = new HessianFreeOptions { MaxIterations = budget },
            },
        });
        using var capture = new LayerCapture(model);
        using var generator = new Generator((ulong)seed + 1);
        var estimators = new Dictionary<FisherKind, FisherEstimator>
        {
            [FisherKind.Empirical] = new(likelihood, FisherKind.Empirical),
            [FisherKind.MonteCarlo] = new(likelihood, FisherKind.MonteCarlo),
            [FisherKind.Exact] = new(likelihood, FisherKind.Exact),
        };
        foreach (var v in variants.Where(v => v.EkfacBlocks))
        {
            var o = new KfacOptions { FactorDecay = v.Decay, FactorUpdatePeriod = 1, InverseUpdatePeriod = v.InversePeriod, DampingMode = v.Eigen ? KfacDampingMode.Eigenbasis : KfacDampingMode.Factored };
            v.Ekfac = new BlockDiagonalCurvature(layer => new EkfacBlock(layer, o));
        }
        foreach (var v in variants.Where(v => v.Kind is not null && v.Cut is null && !v.EkfacBlocks))
            v.Kfac = new KfacSolverPreconditioner(new KfacOptions
            {
                FactorDecay = v.Decay, FactorUpdatePeriod = 1, InverseUpdatePeriod = v.InversePeriod,
                InverseMethod = v.Eigen ? KfacInverseMethod.Eigen : KfacInverseMethod.Cholesky,
                DampingMode = v.Eigen ? KfacDampingMode.Eigenbasis : KfacDampingMode.Factored,
            });

        var cg = new ConjugateGradient();
        var rows = new List<string> { "step,variant,tolerance,iterations,relative_residual,status,solution_rel_diff" };
        var totals = variants.ToDictionary(v => v.Name, _ => tols.ToDictionary(t => t, _ => 0L));
        var budgetResidual = variants.ToDictionary(v => v.Name, _ => new List<double>());
        var iterator = new BatchIterator(ds.TrainX, ds.TrainY, batch, seed);
        Console.WriteLine($"hf-precond: {data}, {ds.TrainCount} training rows, MLP [{hidden}], batch {batch}, λ = {lambda}, {steps} steps, solves every {every}; load {Load()}");
        int step = 0, measured = 0;
        while (step < steps)
        {
            foreach (var (x, y) in iterator.Epoch())
            {
                if (step >= steps) break;
                using var scope = NewDisposeScope();
                bool measure = step % every == measureAt;
                ngd.Preconditioner.Capture.Enabled = false;
                capture.Enabled = true;
                capture.Clear();
                var output = model.call(x);
                var recorded = capture.Recorded();
                var statistics = new Dictionary<FisherKind, IReadOnlyList<LayerStatistics>>();
                foreach (var kind in variants.Where(v => v.Kind is not null).Select(v => v.Kind!.Value).Distinct())
                    statistics[kind] = estimators[kind].Collect(capture, recorded, output, y, generator);
                foreach (var v in variants.Where(v => v.Kfac is not null))
                    v.Kfac!.Update(new CurvatureBatch(statistics[v.Kind!.Value], likelihood, output, step));
                foreach (var v in variants.Where(v => v.Ekfac is not null))
                    v.Ekfac!.Update(new CurvatureBatch(statistics[v.Kind!.Value], likelihood, output, step));
                {
                    // Training applies the preconditioner every step, which is when a due Cholesky inverse is rebuilt
                    // (from the factors of that step): do the same, so that stale inverses are measured as they are.
                    var stepLayout = new ParameterLayout(recorded.Select(l => l.Adapter).ToList());
                    var probe = zeros(stepLayout.Count, dtype: ds.TrainX.dtype);
                    foreach (var v in variants.Where(v => v.Kfac is not null)) v.Kfac!.Apply(stepLayout, probe, lambda * v.DampingScale);
                    foreach (var v in variants.Where(v => v.Ekfac is not null)) Blocks(v.Ekfac!, stepLayout, probe, lambda * v.DampingScale);
                }
                foreach (var v in variants.Where(v => v.Cut is not null))
                {
                    if (v.Eigenbases is { } old) foreach (var e in old) { e.QG.Dispose(); e.EG.Dispose(); e.QA.Dispose(); e.EA.Dispose(); }
                    v.Eigenbases = statistics[v.Kind!.Value].Select(st =>
                    {
                        var (eg, qg) = linalg.eigh(KroneckerFactors.OutputGradient(st).to_type(ScalarType.Float64));
                        var (ea, qa) = linalg.eigh(KroneckerFactors.Activation(st).to_type(ScalarType.Float64));
                        return (qg.DetachFromDisposeScope(), eg.clamp_min(0).DetachFromDisposeScope(), qa.DetachFromDisposeScope(), ea.clamp_min(0).DetachFromDisposeScope());
                    }).ToList();
                }
                if (measure)
                {
                    measured++;
                    var layout = new ParameterLayout(recorded.Select(l => l.Adapter).ToList());
                    var grads = autograd.grad(new[] { likelihood.Loss(output, y) }, layout.Parameters.ToList(), retain_graph: true);
                    var b = layout.Concatenate(grads.ToList()).detach();
                    using var product = new GgnVectorProduct(output, layout.Parameters, likelihood);
                    Func<Tensor, Tensor> apply = v => product.Multiply(v, lambda);
                    double bNorm = b.norm().ToDouble();
                    Tensor? reference = null;
                    var line = new StringBuilder($"  step {step,4}:");
                    Tensor? blockInverse = null;
                    if (variants.Any(v => v.Name == "dense-block"))
                    {
                        // (diag-block of G + λI)⁻¹, dense: the best any per-layer preconditioner can be.
                        var eye = torch.eye(layout.Count, dtype: b.dtype);
                        var dense = stack(Enumerable.Range(0, (int)layout.Count).Select(i => apply(eye[i])).ToArray()).to_type(ScalarType.Float64);
                        var mask = zeros_like(dense);
                        long offset = 0;
                        foreach (var layer in layout.Layers)
                        {
                            long n = layer.OutputDim * layer.InputDim;
                            mask[TensorIndex.Slice(offset, offset + n), TensorIndex.Slice(offset, offset + n)] = 1;
                            offset += n;
                        }
                        blockInverse = linalg.inv((dense + dense.t()) / 2 * mask);
                    }
                    foreach (var v in variants)
                    {
                        Func<Tensor, Tensor>? p = v.Kfac is not null ? r => v.Kfac.Apply(layout, r, lambda * v.DampingScale)
                            : v.Cut is { } tau ? r => Truncated(v.Eigenbases!, layout, r, lambda, tau)
                            : v.Ekfac is not null ? r => Blocks(v.Ekfac, layout, r, lambda * v.DampingScale)
                            : v.Name == "dense-block" ? r => blockInverse!.mv(r.to_type(ScalarType.Float64)).to_type(r.dtype) : null;
                        foreach (var tol in tols)
                        {
                            var rep = cg.Solve(apply, b, null, new SolverOptions { MaxIterations = maxIters, RelativeTolerance = tol }, p);
                            double trueRel = apply(rep.X).sub(b).norm().ToDouble() / bNorm;
                            if (tol == tols.Min()) reference ??= rep.X.detach().clone();
                            double diff = reference is null ? 0 : rep.X.sub(reference).norm().ToDouble() / reference.norm().ToDouble();
                            totals[v.Name][tol] += rep.Iterations;
                            rows.Add(string.Create(CultureInfo.InvariantCulture, $"{step},{v.Name},{tol},{rep.Iterations},{trueRel:G4},{rep.Status},{diff:G3}"));
                            line.Append(string.Create(CultureInfo.InvariantCulture, $" {v.Name} {rep.Iterations}"));
                        }
                        var short_ = cg.Solve(apply, b, null, new SolverOptions { MaxIterations = budget, RelativeTolerance = 1e-12 }, p);
                        double rel = apply(short_.X).sub(b).norm().ToDouble() / bNorm;
                        budgetResidual[v.Name].Add(rel);
                        rows.Add(string.Create(CultureInfo.InvariantCulture, $"{step},{v.Name},budget{budget},{short_.Iterations},{rel:G4},{short_.Status},"));
                        line.Append(string.Create(CultureInfo.InvariantCulture, $" ({rel:F3})"));
                    }
                    Console.WriteLine(line);
                    if (args.Contains("--spectrum") && layout.Count <= 3000) Spectrum(apply, variants, layout, lambda, b.dtype);
                }
                capture.Clear();
                capture.Enabled = false;
                ngd.Preconditioner.Capture.Enabled = true;
                ngd.Step(x, y);
                step++;
            }
        }

        Console.WriteLine();
        Console.WriteLine($"Mean CG iterations to each relative residual ({measured} systems, x₀ = 0), and the mean relative residual after {budget} iterations:");
        Console.WriteLine($"| variant | {string.Join(" | ", tols.Select(t => $"to {t:G}"))} | residual after {budget} |");
        Console.WriteLine($"|---|{string.Concat(tols.Select(_ => "---|"))}---|");
        foreach (var v in variants)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {v.Name} | {string.Join(" | ", tols.Select(t => $"{totals[v.Name][t] / (double)measured:F1}"))} | {budgetResidual[v.Name].Average():F4} |"));
        Directory.CreateDirectory("results/bench");
        var path = $"results/bench/hf-precond-{data}.csv";
        File.WriteAllLines(path, rows);
        Console.WriteLine($"rows: {path}; load {Load()}");
        foreach (var v in variants) { v.Kfac?.Dispose(); v.Ekfac?.Dispose(); }
        return 0;
    }

    private static Tensor Blocks(BlockDiagonalCurvature blocks, ParameterLayout layout, Tensor r, double damping)
    {
        using var scope = NewDisposeScope();
        var solved = blocks.Precondition(layout.Layers, layout.ToMatrices(r), damping);
        return scope.MoveToOuter(layout.ToFlat(solved).to_type(r.dtype));
    }

    /// <summary>
    /// P r with P = Q diag(d) Qᵀ in each layer's Kronecker eigenbasis, d = λ/(eᴳeᴬ + λ) where eᴳeᴬ ≥ τλ and 1 elsewhere:
    /// K-FAC's exactly damped inverse (times λ) on its strongly curved directions, the identity on the rest.
    /// </summary>
    private static Tensor Truncated(List<(Tensor QG, Tensor EG, Tensor QA, Tensor EA)> eigen, ParameterLayout layout, Tensor r, double lambda, double tau)
    {
        using var scope = NewDisposeScope();
        var pieces = layout.ToMatrices(r);
        var result = new List<Tensor>();
        for (int l = 0; l < pieces.Count; l++)
        {
            var (qg, eg, qa, ea) = eigen[l];
            var e = eg.unsqueeze(1).mul(ea.unsqueeze(0));
            var d = where(e.ge(tau * lambda), e.add(lambda).reciprocal().mul(lambda), ones_like(e));
            var proj = qg.t().mm(pieces[l].to_type(ScalarType.Float64)).mm(qa);
            result.Add(qg.mm(proj.mul(d)).mm(qa.t()));
        }
        return scope.MoveToOuter(layout.ToFlat(result).to_type(r.dtype));
    }

    /// <summary>Eigenvalues of G + λI and of P^½(G + λI)P^½ for each variant (dense; small models only).</summary>
    private static void Spectrum(Func<Tensor, Tensor> apply, IReadOnlyList<Variant> variants, ParameterLayout layout, double lambda, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        long p = layout.Count;
        var eye = torch.eye(p, dtype: dtype);
        var m = stack(Enumerable.Range(0, (int)p).Select(i => apply(eye[i])).ToArray()).to_type(ScalarType.Float64);
        m = (m + m.t()) / 2;
        foreach (var v in variants)
        {
            Tensor s;
            if (v.Kfac is null && v.Cut is null && v.Ekfac is null) s = linalg.eigvalsh(m);
            else
            {
                var pm = stack(Enumerable.Range(0, (int)p).Select(i => v.Kfac is not null ? v.Kfac.Apply(layout, eye[i], lambda * v.DampingScale)
                    : v.Ekfac is not null ? Blocks(v.Ekfac, layout, eye[i], lambda * v.DampingScale)
                    : Truncated(v.Eigenbases!, layout, eye[i], lambda, v.Cut!.Value)).ToArray()).to_type(ScalarType.Float64);
                pm = (pm + pm.t()) / 2;
                var l = linalg.cholesky(pm);
                s = linalg.eigvalsh(l.t().mm(m).mm(l));
            }
            var e = s.data<double>().ToArray();
            double max = e.Max(), min = e.Min();
            var q = new[] { 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0 }.Select(f => e[(int)Math.Min(e.Length - 1, f * e.Length)] / max);
            int distinct = 1;
            for (int i = 1; i < e.Length; i++) if (e[i] > e[i - 1] * 1.05) distinct++;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {v.Name,-20} p = {p}, κ = {max / min:E2}, 5%-clusters = {distinct}, quantiles/max: {string.Join(" ", q.Select(x => x.ToString("E1", CultureInfo.InvariantCulture)))}"));
        }
    }

    private static string Load() => File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    private static string Arg(string[] args, string name, string fallback)
    {
        int at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
    }

    private static int Int(string[] args, string name, int fallback) => int.Parse(Arg(args, name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    private static double Dbl(string[] args, string name, double fallback) => double.Parse(Arg(args, name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
}
