using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// TENGraD's push-through solve Δ = Jᵀ (wK + λI)⁻¹ c·1 for the empirical Fisher measured by the gradient's own backward
/// pass (g = Jᵀ(c·1), c = 1/m), against an SVD solve that has no subtraction: with J = U diag(s) Vᵀ from a loop of
/// single-example backward passes, Δ_ref = V diag(s / (s²/m + λ)) Uᵀ (1/m)·1.
/// </summary>
[Collection("Torch")]
public class TengradPushThroughTests
{
    private readonly ITestOutputHelper _out;
    public TengradPushThroughTests(ITestOutputHelper output) => _out = output;

    private const int M = 32;

    /// <summary>Relative error of TENGraD's Δ over all layers against the SVD solve; and how many layers took the push-through solve.</summary>
    private (double Error, long PushThrough) Errors(ScalarType dtype, double damping, string activation = "tanh")
    {
        using var scope = NewDisposeScope();
        var net = TestModels.Mlp(new[] { 2, 16, 8, 3 }, activation: activation, seed: 21);
        net.to(dtype);
        var x = TestModels.Inputs(M, 2, seed: 22).to_type(dtype);
        manual_seed(23);
        var y = randint(0, 3, M);
        var likelihood = new CategoricalLikelihood();
        using var pre = new NaturalGradientPreconditioner(net, likelihood,
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = damping });
        net.zero_grad();
        pre.Backward(net.call(x), y);
        var layers = pre.Layers;
        long before = TengradBlock.PushThroughSolves;
        var delta = pre.Solve(pre.GradientMatrices(), damping).Select(d => d.detach().clone()).ToArray();
        long pushed = TengradBlock.PushThroughSolves - before;

        var jacobians = BruteForce.PerExampleGradients(net, layers, x, likelihood.PerExampleLoss, y);
        var c = full(M, 1.0 / M, dtype: ScalarType.Float64);
        double err = 0, norm = 0;
        for (int l = 0; l < layers.Count; l++)
        {
            var j = jacobians[l].reshape(M, -1).to_type(ScalarType.Float64);
            var (u, s, vh) = linalg.svd(j, fullMatrices: false);
            var reference = vh.t().mv(s / (s.square() / M + damping) * u.t().mv(c));
            err += (delta[l].flatten().to_type(ScalarType.Float64) - reference).square().sum().item<double>();
            norm += reference.square().sum().item<double>();
        }
        return (Math.Sqrt(err / norm), pushed);
    }

    /// <summary>
    /// A layer whose push-through solve fails its rounding bound on the mean-gradient route (float64, λ = 1e-10: one of
    /// three layers) is solved from its gradient without factoring w K + λI a second time: one factorisation per layer
    /// for the whole step, and the same Δ as the preconditioner path (which the SVD test below checks) to the float64
    /// tolerance 1e-9: the route knows r = 0, while the path sees the rounding r of g and, at this λ, adds its term
    /// (w JᵀJ + λI)⁻¹ r (relative 4.7e-10 for one layer), whose bound ‖r‖/λ exceeds a tenth of the tolerance.
    /// </summary>
    [Fact]
    public void RejectedRoute_IsNotFactoredAgain_AndGivesThePreconditionerPathsStep()
    {
        using var scope = NewDisposeScope();
        const double damping = 1e-10;
        var net = TestModels.Mlp(new[] { 2, 16, 8, 3 }, activation: "tanh", seed: 21);
        net.to(ScalarType.Float64);
        var x = TestModels.Inputs(M, 2, seed: 22).to_type(ScalarType.Float64);
        manual_seed(23);
        var y = randint(0, 3, M);
        using var pre = new NaturalGradientPreconditioner(net, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = damping });
        net.zero_grad();
        pre.Backward(net.call(x), y);
        var g = pre.GradientMatrices();
        long factorizations = TengradBlock.PushThroughFactorizations, routed = TengradBlock.MeanGradientSolves;
        var route = pre.SolveMeanGradient(g, damping).Select(d => d.detach().clone()).ToArray();
        Assert.Equal(2, TengradBlock.MeanGradientSolves - routed);              // one layer declined the route
        Assert.Equal(3, TengradBlock.PushThroughFactorizations - factorizations); // and was not factored again
        var reference = pre.Solve(g, damping);
        for (int l = 0; l < route.Length; l++) TensorAssert.Close(reference[l], route[l], rtol: TengradBlock.PushThroughTolerance64, label: $"layer {l}");
    }

    /// <summary>
    /// Float32, the benchmark's figure-5 net of depth 16 on a noise target after 30 steps (per-example gradients of the
    /// deep layers nearly cancel), λ = 1e-2: layers whose push-through Δ fails its rounding bound fall back to eq 40,
    /// which reuses the route's float64 factor of w K + λI; every layer's Δ agrees with the SVD solve of the
    /// per-example Jacobian to the float32 tolerance 1e-3.
    /// </summary>
    [Fact]
    public void DeepNoiseTarget_Float32_FallbackReusesTheFactor_AndAgreesWithTheSvdSolve()
    {
        using var scope = NewDisposeScope();
        const double damping = 1e-2;
        const int m = 128;
        var (net, pre, x, y, likelihood) = DeepNoiseProblem(damping, m);
        using var _ = pre;
        var layers = pre.Layers;
        long woodbury = TengradBlock.WoodburySolves, factorizations = TengradBlock.PushThroughFactorizations, reuses = TengradBlock.FactorReuses,
            routed = TengradBlock.MeanGradientSolves;
        var delta = RouteDeltas(pre, damping);
        _out.WriteLine($"eq 40 fallbacks: {TengradBlock.WoodburySolves - woodbury} of {layers.Count} layers");
        Assert.True(TengradBlock.WoodburySolves - woodbury > 0, "some layer falls back to eq 40");
        Assert.Equal(GramLayers(pre), TengradBlock.PushThroughFactorizations - factorizations);
        // Every layer that declined the route solved eq 40 from the route's factor: no second factorisation.
        Assert.Equal(layers.Count - (TengradBlock.MeanGradientSolves - routed), TengradBlock.FactorReuses - reuses);
        AssertAgreesWithSvd(net, layers, x, y, likelihood, delta, damping, m, 1e-3);
    }

    /// <summary>
    /// The same net at λ = 1e-6, where eq 40's float32 error estimate fails too for some layers: they take the
    /// push-through solve in float64 (not the eigendecomposition split), and every layer's Δ agrees with the SVD solve
    /// to 1e-3.
    /// </summary>
    [Fact]
    public void DeepNoiseTarget_Float32_SmallDamping_TakesThePushThroughInFloat64_AndAgreesWithTheSvdSolve()
    {
        using var scope = NewDisposeScope();
        const double damping = 1e-6;
        const int m = 128;
        var (net, pre, x, y, likelihood) = DeepNoiseProblem(damping, m);
        using var _ = pre;
        var layers = pre.Layers;
        long float64 = TengradBlock.Float64PushThroughSolves;
        var delta = RouteDeltas(pre, damping);
        _out.WriteLine($"push-through in float64: {TengradBlock.Float64PushThroughSolves - float64} of {layers.Count} layers");
        Assert.True(TengradBlock.Float64PushThroughSolves - float64 > 0, "some layer takes the push-through solve in float64");
        AssertAgreesWithSvd(net, layers, x, y, likelihood, delta, damping, m, 1e-3);
    }

    /// <summary>
    /// The same net at λ = 1e-6 with g + r for each layer, r = α W̄ (a weight-decay term) of norm 0.3 × the round-off
    /// level 10 √n ε₃₂ (‖g‖ + (1/m) √(n tr K)) below which r was taken for rounding and left out of Δ: the term left out,
    /// (w JᵀJ + λI)⁻¹ r, is up to r/λ, far above the tolerance at this λ. Every layer's Δ (push-through in float32 or
    /// float64, eq 40 or the split) agrees to 1e-3 with the SVD solve of (w JᵀJ + λI) Δ = (1/m) Jᵀ1 + r in float64, J from
    /// single-example backward passes (V's complement taken as r/λ).
    /// </summary>
    [Fact]
    public void DeepNoiseTarget_Float32_SmallDamping_GradientWithASmallExtraTerm_AgreesWithTheSvdSolve()
    {
        using var scope = NewDisposeScope();
        const double damping = 1e-6;
        const int m = 128;
        var (net, pre, x, y, likelihood) = DeepNoiseProblem(damping, m);
        using var _ = pre;
        var layers = pre.Layers;
        var g = pre.GradientMatrices().Select(t => t.detach().clone()).ToList();
        var jacobians = BruteForce.PerExampleGradients(net, layers, x, likelihood.PerExampleLoss, y);
        var rest = new List<Tensor>();
        for (int l = 0; l < layers.Count; l++)
        {
            var j = jacobians[l].reshape(m, -1).to_type(ScalarType.Float64);
            double mean = j.sum(dim: 0).div(m).norm().ToDouble(), traceK = j.square().sum().ToDouble();
            double roundOff = 10 * Math.Sqrt(m) * 1.1920929e-7 * (mean + Math.Sqrt(m * traceK) / m);
            var w = layers[l].WeightMatrix().to_type(ScalarType.Float32);
            rest.Add(w.mul(0.3 * roundOff / w.norm().ToDouble()));
        }
        var delta = pre.Solve(g.Select((t, l) => t + rest[l]).ToList(), damping).Select(d => d.detach().clone()).ToArray();
        for (int l = 0; l < layers.Count; l++)
        {
            var j = jacobians[l].reshape(m, -1).to_type(ScalarType.Float64);
            var b = j.sum(dim: 0).div(m) + rest[l].flatten().to_type(ScalarType.Float64);
            var (_, s, vh) = linalg.svd(j, fullMatrices: false);
            var inRows = vh.mv(b);
            var reference = vh.t().mv(inRows / (s.square() / m + damping)) + (b - vh.t().mv(inRows)) / damping;
            double error = (delta[l].flatten().to_type(ScalarType.Float64) - reference).norm().ToDouble() / reference.norm().ToDouble();
            _out.WriteLine($"layer {l}: relative error {error:E2}");
            Assert.True(error < 1e-3, $"layer {l}: relative error {error:E2}");
        }
    }

    /// <summary>
    /// The same net at λ = 1e-8, where the route fails for a layer even in float64 (w K + λI does not factor): that layer
    /// is solved from its gradient by the other solves without a second push-through factorisation (one per layer for the
    /// step), and every layer's Δ agrees with the SVD solve to 1e-2 (at this λ the float32 statistics' own round-off,
    /// amplified by the conditioning, is what remains).
    /// </summary>
    [Fact]
    public void DeepNoiseTarget_Float32_DeclinedLayers_AreFactoredOnce_AndAgreeWithTheSvdSolve()
    {
        using var scope = NewDisposeScope();
        const double damping = 1e-8;
        const int m = 128;
        var (net, pre, x, y, likelihood) = DeepNoiseProblem(damping, m);
        using var _ = pre;
        var layers = pre.Layers;
        long factorizations = TengradBlock.PushThroughFactorizations, routed = TengradBlock.MeanGradientSolves;
        var delta = RouteDeltas(pre, damping);
        long declined = layers.Count - (TengradBlock.MeanGradientSolves - routed);
        _out.WriteLine($"{declined} of {layers.Count} layers declined the route");
        Assert.True(declined > 0, "some layer declines the route");
        Assert.Equal(GramLayers(pre), TengradBlock.PushThroughFactorizations - factorizations);
        AssertAgreesWithSvd(net, layers, x, y, likelihood, delta, damping, m, 1e-2);
    }

    /// <summary>Δ of every layer on the mean-gradient route (copies that outlive the preconditioner's next use).</summary>
    private static Tensor[] RouteDeltas(NaturalGradientPreconditioner pre, double damping) =>
        pre.SolveMeanGradient(pre.GradientMatrices(), damping).Select(d => d.detach().clone()).ToArray();

    /// <summary>
    /// The layers of <paramref name="pre"/> that TENGraD solves through the n × n Gram, not in parameter space (the figure-5
    /// nets' 21 × 1 head at n = 128 is solved in parameter space: <see cref="TengradBlock.SolvesInParameterSpace"/>).
    /// </summary>
    internal static int GramLayers(NaturalGradientPreconditioner pre)
    {
        var curvature = (NaturalGradient.Curvature.BlockDiagonalCurvature)pre.Curvature;
        return pre.Layers.Count(l => !TengradBlock.SolvesInParameterSpace(((TengradBlock)curvature.Block(l.Name)).Statistics!));
    }

    internal static (Module<Tensor, Tensor> Net, NaturalGradientPreconditioner Pre, Tensor X, Tensor Y, GaussianLikelihood Likelihood) DeepNoiseProblem(double damping, int m)
    {
        manual_seed(0);
        var x = randn(m, 16);
        var y = randn(m, 1);
        manual_seed(0);
        var net = NaturalGradient.Training.Models.ModelFactory.Mlp(new long[] { 16 }, 1, Enumerable.Repeat(20, 16).ToArray(),
            NaturalGradient.Training.Models.Activation.Tanh, ScalarType.Float32);   // the benchmark's figure-5 net of depth 16
        var likelihood = new GaussianLikelihood();
        var options = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = 1e-2 };
        using (var ngd = new NaturalGradient.Optim.NaturalGradientDescent(net, likelihood,
                   new NaturalGradient.Optim.NaturalGradientOptions { LearningRate = 1e-3, Momentum = 0.9, Preconditioner = options }))
            for (int i = 0; i < 30; i++) { using var step = NewDisposeScope(); ngd.Step(x, y); }
        var pre = new NaturalGradientPreconditioner(net, likelihood, options with { Damping = damping });
        net.zero_grad();
        pre.Backward(net.call(x), y);
        return (net, pre, x, y, likelihood);
    }

    private static void AssertAgreesWithSvd(Module<Tensor, Tensor> net, IReadOnlyList<NaturalGradient.Capture.ILayerAdapter> layers, Tensor x, Tensor y,
        GaussianLikelihood likelihood, Tensor[] delta, double damping, int m, double tolerance)
    {
        var jacobians = BruteForce.PerExampleGradients(net, layers, x, likelihood.PerExampleLoss, y);
        var c = full(m, 1.0 / m, dtype: ScalarType.Float64);
        for (int l = 0; l < layers.Count; l++)
        {
            var j = jacobians[l].reshape(m, -1).to_type(ScalarType.Float64);
            var (u, s, vh) = linalg.svd(j, fullMatrices: false);
            var reference = vh.t().mv(s / (s.square() / m + damping) * u.t().mv(c));
            double error = (delta[l].flatten().to_type(ScalarType.Float64) - reference).norm().item<double>() / reference.norm().item<double>();
            Assert.True(error < tolerance, $"layer {l}: relative error {error:E2}");
        }
    }

    /// <summary>
    /// Float64: the layers take the push-through solve and agree with the SVD solve down to λ = 1e-10 (tolerances about
    /// 30× the measured errors: 3.5e-15, 7.0e-14, 1.5e-11, 1.5e-8). At λ = 1e-10 one layer's rounding bound exceeds 1e-9
    /// and that layer falls back to the eigendecomposition split.
    /// </summary>
    [Theory]
    [InlineData(1e-1, 1e-13, 3)]
    [InlineData(1e-4, 2e-12, 3)]
    [InlineData(1e-7, 5e-10, 3)]
    [InlineData(1e-10, 5e-7, 2)]
    public void Float64_TakesThePushThroughSolve_AndAgreesWithTheSvdSolve(double damping, double tolerance, int pushThroughLayers)
    {
        var (error, pushed) = Errors(ScalarType.Float64, damping);
        _out.WriteLine($"λ = {damping:E0}: error {error:E2}, push-through layers {pushed}");
        Assert.Equal(pushThroughLayers, pushed);
        Assert.True(error <= tolerance, $"relative error {error:E2} > {tolerance:E0} at λ = {damping:E0}");
    }

    /// <summary>
    /// Float32 (the CLI default): the push-through solve keeps its accuracy as λ falls, where eq 40 in float32 loses
    /// digits as 1/λ; what is left is the float32 statistics' own round-off (tolerances about 30× the measured errors:
    /// 2.8e-7, 2.4e-6, 1.9e-4).
    /// </summary>
    [Theory]
    [InlineData(1e-1, 1e-5)]
    [InlineData(1e-3, 1e-4)]
    [InlineData(1e-5, 6e-3)]
    public void Float32_TakesThePushThroughSolve_AndAgreesWithTheSvdSolve(double damping, double tolerance)
    {
        var (error, pushed) = Errors(ScalarType.Float32, damping);
        _out.WriteLine($"λ = {damping:E0}: error {error:E2}, push-through layers {pushed}");
        Assert.Equal(3, pushed);
        Assert.True(error <= tolerance, $"relative error {error:E2} > {tolerance:E0} at λ = {damping:E0}");
    }

    /// <summary>
    /// A gradient that is not the rows' mean — rescaled (as gradient clipping does) plus weight decay — takes the
    /// push-through solve for the explained part and eq 40 for the rest; the sum equals the dense solve
    /// (M + λI)⁻¹ g with M = (1/m) JᵀJ from the per-example Jacobian.
    /// </summary>
    [Theory]
    [InlineData(1e-2)]
    [InlineData(1e-6)]
    public void GradientBeyondTheRows_MatchesTheDenseSolve(double damping)
    {
        using var scope = NewDisposeScope();
        var net = TestModels.Mlp(new[] { 3, 12, 2 }, seed: 8);
        var x = TestModels.Inputs(6, 3, seed: 9);
        var t = TestModels.Inputs(6, 2, seed: 10);
        var lik = new GaussianLikelihood();
        using var pre = new NaturalGradientPreconditioner(net, lik,
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = damping });
        pre.Backward(net.call(x), t);
        var layers = pre.Layers;
        var g = pre.GradientMatrices().Select((m, i) => m.mul(0.3).add_(layers[i].WeightMatrix(), alpha: 5e-3)).ToList();
        long before = TengradBlock.PushThroughSolves;
        var delta = pre.Solve(g, damping);
        Assert.Equal(layers.Count, TengradBlock.PushThroughSolves - before);
        var jacobians = BruteForce.PerExampleGradients(net, layers, x, (o, y) => lik.PerExampleLoss(o, y), t);
        for (int l = 0; l < layers.Count; l++)
        {
            var expected = BruteForce.DampedSolve(BruteForce.EmpiricalFisher(jacobians[l].reshape(6, -1)), damping, g[l].flatten());
            double rel = (delta[l].flatten() - expected).norm().item<double>() / expected.norm().item<double>();
            _out.WriteLine($"layer {l}, λ = {damping:E0}: relative error {rel:E2}");
            Assert.True(rel <= 1e-8, $"layer {l}: relative error {rel:E2} at λ = {damping:E0}");
        }
    }

    /// <summary>
    /// The Monte-Carlo Fisher's rows are not the gradient's: the push-through form must not be taken (the gradient's
    /// coefficients are unknown), and the result still equals the dense solve.
    /// </summary>
    [Fact]
    public void MonteCarloFisher_DoesNotTakeThePushThroughSolve()
    {
        using var scope = NewDisposeScope();
        var net = TestModels.Mlp(new[] { 3, 12, 2 }, seed: 8);
        var x = TestModels.Inputs(6, 3, seed: 9);
        var t = TestModels.Inputs(6, 2, seed: 10);
        using var pre = new NaturalGradientPreconditioner(net, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.MonteCarlo, Damping = 1e-2 });
        pre.Backward(net.call(x), t);
        long before = TengradBlock.PushThroughSolves;
        var delta = pre.Solve(pre.GradientMatrices(), 1e-2);
        Assert.Equal(before, TengradBlock.PushThroughSolves);
        Assert.All(delta, d => Assert.True(d.isfinite().all().item<bool>()));
    }

    /// <summary>
    /// In training (float32 ReLU classifier, damping 0.01, lr 0.1, momentum 0.9: examples whose gradients shrink as they
    /// are learned) every layer of every step keeps the push-through solve: its rounding bound weighs each uᵢ by ‖Jᵢ‖,
    /// so a large uᵢ on an example with a tiny gradient does not send the layer to the float64 eigendecomposition.
    /// </summary>
    [Fact]
    public void Training_KeepsThePushThroughSolve()
    {
        using var scope = NewDisposeScope();
        var net = TestModels.Mlp(new[] { 20, 64, 64, 5 }, activation: "relu", seed: 31);
        net.to(ScalarType.Float32);
        manual_seed(32);
        var x = randn(128, 20);
        var y = x.narrow(1, 0, 5).argmax(1);   // learnable labels: the per-example gradients shrink as training goes on
        using var ngd = new NaturalGradient.Optim.NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradient.Optim.NaturalGradientOptions
        {
            LearningRate = 0.1, Momentum = 0.9,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Damping = 1e-2 },
        });
        long before = TengradBlock.PushThroughSolves;
        double first = 0, last = 0;
        for (int s = 0; s < 40; s++)
        {
            using var step = NewDisposeScope();
            var r = ngd.Step(x, y);
            if (s == 0) first = r.Loss;
            last = r.Loss;
        }
        _out.WriteLine($"loss {first:F4} → {last:F4}, push-through solves {TengradBlock.PushThroughSolves - before} of {40 * 3}");
        Assert.Equal(40 * 3, TengradBlock.PushThroughSolves - before);
        Assert.True(last < 0.5 * first, $"loss {first} → {last}");
    }

    /// <summary>
    /// NaturalGradientDescent (empirical Fisher from its own backward, no weight decay, one process) solves TENGraD for
    /// the statistics' own mean gradient without forming g − Jᵀ(w·1) (<see cref="TengradBlock.PreconditionMeanGradient"/>),
    /// and steps exactly as the preconditioner path, which solves .grad with that check; under auto too.
    /// </summary>
    [Theory]
    [InlineData(CurvatureStructure.Tengrad)]
    [InlineData(CurvatureStructure.Auto)]   // 8 examples against 31- and 41-wide layers: auto gives both layers TENGraD
    public void NaturalGradientDescent_TakesTheMeanGradientRoute_AndStepsAsThePreconditionerPath(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var options = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Empirical, Damping = 1e-3 };
        long before = TengradBlock.MeanGradientSolves;
        PathTwins.AssertOptimizerStepsAsPreconditionerPath(options, momentum: 0, label: structure.ToString());
        Assert.Equal(3 * 2, TengradBlock.MeanGradientSolves - before);
    }
}
