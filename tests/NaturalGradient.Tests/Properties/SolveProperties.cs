using CsCheck;
using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Properties;

/// <summary>
/// Property tests (issue 11 §3) over random small float64 problems: layer widths, batch size, likelihood, Fisher
/// kind, bias, activation and damping λ ∈ [1e-3, 1] are drawn by CsCheck from a fixed seed (<see cref="Seed"/>;
/// CsCheck_Seed in the environment replays another). For each problem: TENGraD = block; K-FAC = the explicit
/// Kronecker solve (G ⊗ A + λI)⁻¹ (eigen inverses) and ((G + √λ/π I) ⊗ (A + π√λ I))⁻¹ (eigen and Cholesky inverses)
/// of its own factors; Hessian-free = the direct
/// solve with the exact Fisher built from per-example output Jacobians; every Δ finite; and every method's Δ a
/// descent direction, gᵀΔ &gt; 0.
/// </summary>
[Collection("Torch")]
public class SolveProperties
{
    /// <summary>The fixed CsCheck seed of the sampled problems.</summary>
    public const string Seed = "0000000ABCDE";

    private const int Iterations = 40;

    private readonly ITestOutputHelper _out;
    public SolveProperties(ITestOutputHelper output) => _out = output;

    /// <summary>One random problem.</summary>
    public sealed record Problem(int Inputs, int Hidden, int Outputs, int BatchSize, LikelihoodKind Likelihood, FisherKind Fisher,
        bool Bias, string Activation, double Damping, int DataSeed)
    {
        public override string ToString() =>
            $"{Inputs}-{Hidden}-{Outputs} {Activation} bias={Bias} m={BatchSize} {Likelihood} {Fisher} λ={Damping:G3} seed={DataSeed}";
    }

    private static readonly Gen<Problem> Problems =
        from inputs in Gen.Int[1, 4]
        from hidden in Gen.Int[1, 6]
        from outputs in Gen.Int[1, 3]
        from m in Gen.Int[1, 10]
        from likelihood in Gen.Enum<LikelihoodKind>()
        from fisher in Gen.Enum<FisherKind>()
        from bias in Gen.Bool
        from activation in Gen.OneOf("tanh", "relu", "sigmoid")
        from logDamping in Gen.Double[-3, 0]
        from seed in Gen.Int[0, 1_000_000]
        select new Problem(inputs, hidden, likelihood == LikelihoodKind.Categorical ? Math.Max(outputs, 2) : outputs, m,
            likelihood, fisher, bias, activation, Math.Pow(10, logDamping), seed);

    private static Tensor Targets(Problem p, Tensor x)
    {
        manual_seed(p.DataSeed + 1);
        return p.Likelihood switch
        {
            LikelihoodKind.Gaussian => randn(p.BatchSize, p.Outputs, dtype: ScalarType.Float64),
            LikelihoodKind.Bernoulli => bernoulli(full(p.BatchSize, p.Outputs, 0.5, dtype: ScalarType.Float64)),
            _ => randint(0, p.Outputs, new long[] { p.BatchSize }, dtype: ScalarType.Int64),
        };
    }

    /// <summary>Δ per layer and the layers and gradients, for one structure on the problem.</summary>
    private static (IReadOnlyList<Tensor> Delta, IReadOnlyList<Tensor> Gradient, IReadOnlyList<ILayerAdapter> Layers, ICurvature Curvature, NaturalGradientPreconditioner Pre)
        Solve(Problem p, PreconditionerOptions options)
    {
        var net = TestModels.Mlp(new[] { p.Inputs, p.Hidden, p.Outputs }, p.Activation, p.Bias, seed: p.DataSeed);
        var x = TestModels.Inputs(p.BatchSize, p.Inputs, seed: p.DataSeed + 2);
        var y = Targets(p, x);
        var pre = new NaturalGradientPreconditioner(net, Likelihood.Create(p.Likelihood), options with { Fisher = p.Fisher, Damping = p.Damping });
        pre.Backward(net.call(x), y);
        var g = pre.GradientMatrices();
        return (pre.Solve(g, p.Damping), g, pre.Layers, pre.Curvature, pre);
    }

    private static double Inner(IReadOnlyList<Tensor> a, IReadOnlyList<Tensor> b) =>
        a.Zip(b).Sum(t => (t.First * t.Second).sum().item<double>());

    private static void Descent(string method, IReadOnlyList<Tensor> g, IReadOnlyList<Tensor> delta)
    {
        Assert.True(FiniteGuard.AllFinite(delta), $"{method}: Δ not finite");
        double gg = Inner(g, g);
        if (gg < 1e-24) return;   // no gradient, no direction to descend
        double gd = Inner(g, delta);
        Assert.True(gd > 0, $"{method}: gᵀΔ = {gd:E3} ≤ 0 (‖g‖² = {gg:E3})");
    }

    /// <summary>
    /// Runs the property on <see cref="Iterations"/> problems drawn as one array from the seed (CsCheck seeds only the
    /// first iteration of a sample, so the problems are one sample: the same ones on every run), shrinking on failure.
    /// </summary>
    private void Check(Action<Problem> property) =>
        Problems.Array[Iterations].Sample(problems =>
        {
            foreach (var p in problems)
            {
                using var scope = NewDisposeScope();
                if (Environment.GetEnvironmentVariable("NG_PRINT_PROBLEMS") is not null) _out.WriteLine(p.ToString());
                property(p);
            }
        }, seed: Environment.GetEnvironmentVariable("CsCheck_Seed") ?? Seed, iter: 1, threads: 1, writeLine: _out.WriteLine);

    [Fact]
    public void Tengrad_EqualsBlock_AndBothDescend() => Check(p =>
    {
        var (block, g, _, _, preB) = Solve(p, new PreconditionerOptions { Structure = CurvatureStructure.BlockDiagonal });
        var (tengrad, _, _, _, preT) = Solve(p, new PreconditionerOptions { Structure = CurvatureStructure.Tengrad });
        for (int l = 0; l < g.Count; l++) TensorAssert.Close(block[l], tengrad[l], rtol: 1e-8, label: $"{p} layer {l}");
        Descent("block", g, block);
        Descent("tengrad", g, tengrad);
        preB.Dispose(); preT.Dispose();
    });

    [Fact]
    public void Kfac_EqualsTheExplicitKroneckerSolve_InBothDampingModes() => Check(p =>
    {
        foreach (var (method, mode) in new[] { (KfacInverseMethod.Eigen, KfacDampingMode.Eigenbasis),
                     (KfacInverseMethod.Eigen, KfacDampingMode.Factored), (KfacInverseMethod.Cholesky, KfacDampingMode.Factored) })
        {
            var (delta, g, layers, curvature, pre) = Solve(p, new PreconditionerOptions
            {
                Structure = CurvatureStructure.Kfac, Kfac = new KfacOptions { InverseMethod = method, DampingMode = mode },
            });
            for (int l = 0; l < layers.Count; l++)
            {
                var block = (KfacBlock)((BlockDiagonalCurvature)curvature).Block(layers[l].Name);
                var a = block.ActivationFactor;
                var gf = block.OutputGradientFactor;
                Tensor dense;
                if (mode == KfacDampingMode.Eigenbasis)
                    dense = kron(gf, a) + p.Damping * eye(gf.shape[0] * a.shape[0], dtype: ScalarType.Float64);
                else
                {
                    double pi = Math.Sqrt((a.trace().item<double>() / a.shape[0]) / (gf.trace().item<double>() / gf.shape[0]));
                    if (!(pi > 0) || !double.IsFinite(pi)) pi = 1;
                    double root = Math.Sqrt(p.Damping);
                    dense = kron(gf + root / pi * eye(gf.shape[0], dtype: ScalarType.Float64), a + pi * root * eye(a.shape[0], dtype: ScalarType.Float64));
                }
                var expected = linalg.solve(dense, g[l].flatten()).reshape(g[l].shape);
                TensorAssert.Close(expected, delta[l], rtol: 1e-8, label: $"{p} {method} {mode} layer {l}");
            }
            Descent($"kfac {method} {mode}", g, delta);
            pre.Dispose();
        }
    });

    [Fact]
    public void HessianFree_EqualsTheDirectSolveWithTheExactFisher_AndDescends() => Check(p =>
    {
        var net = TestModels.Mlp(new[] { p.Inputs, p.Hidden, p.Outputs }, p.Activation, p.Bias, seed: p.DataSeed);
        var x = TestModels.Inputs(p.BatchSize, p.Inputs, seed: p.DataSeed + 2);
        var y = Targets(p, x);
        var likelihood = Likelihood.Create(p.Likelihood);
        using var pre = new NaturalGradientPreconditioner(net, likelihood, new PreconditionerOptions
        {
            Structure = CurvatureStructure.HessianFree, Damping = p.Damping,
            HessianFree = new HessianFreeOptions { MaxIterations = 500, RelativeTolerance = 1e-12, WarmStart = false },
        });
        pre.Backward(net.call(x), y);
        var g = pre.GradientMatrices().Select(t => t.clone()).ToList();
        var delta = pre.Solve(g, p.Damping);
        var f = ExactFisherReference.Build(net, pre.Layers, x, likelihood);
        var flat = BruteForce.DampedSolve(f, p.Damping, cat(g.Select(t => t.flatten()).ToArray()));
        TensorAssert.Close(flat, cat(delta.Select(t => t.flatten()).ToArray()), rtol: 1e-7, label: p.ToString());
        Descent("hf", g, delta);
    });

    [Fact]
    public void EveryMethod_GivesAFiniteDescentDirection() => Check(p =>
    {
        var structures = new (string Name, PreconditionerOptions Options)[]
        {
            ("exact", new() { Structure = CurvatureStructure.Exact }),
            ("diag", new() { Structure = CurvatureStructure.Diagonal }),
            ("kfac-cholesky", new() { Structure = CurvatureStructure.Kfac, Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Cholesky } }),
            ("kfac-eigen", new() { Structure = CurvatureStructure.Kfac, Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Eigen } }),
            ("ekfac", new() { Structure = CurvatureStructure.Ekfac }),
            ("hf-minres", new() { Structure = CurvatureStructure.HessianFree, HessianFree = new HessianFreeOptions { Solver = NaturalGradient.Solvers.SolverKind.Minres } }),
        };
        foreach (var (name, options) in structures)
        {
            var (delta, g, _, _, pre) = Solve(p, options);
            Descent($"{name} on {p}", g, delta);
            pre.Dispose();
        }
    });
}
