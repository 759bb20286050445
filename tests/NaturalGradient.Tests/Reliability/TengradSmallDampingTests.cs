using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// Issue 11 §1.4: TENGraD's Δ against a cancellation-free SVD solve at small damping. Case: 32 points y = eˣ on
/// [0, 1], net 1-16-1 tanh, Gaussian, exact Fisher. With the Gaussian exact Fisher the gradient is g = Jᵀc with
/// c = (r − t)/m and J the per-example output Jacobian (rows from one backward pass per example), so the reference
/// Δ = V diag(s / (w s² + λ)) Uᵀ c from the SVD J = U diag(s) Vᵀ (w = 1/m) involves no subtraction and no 1/λ.
/// </summary>
[Collection("Torch")]
public class TengradSmallDampingTests
{
    private readonly ITestOutputHelper _out;
    public TengradSmallDampingTests(ITestOutputHelper output) => _out = output;

    /// <summary>Relative error ‖Δ − Δ_ref‖ / ‖Δ_ref‖ over all layers, for TENGraD and block.</summary>
    private (double Tengrad, double Block, double Norm) Errors(ScalarType dtype, double damping)
    {
        using var scope = NewDisposeScope();
        var net = TestModels.Mlp(new[] { 1, 16, 1 }, seed: 7);
        net.to(dtype);
        var x = linspace(0, 1, 32, dtype: ScalarType.Float64).reshape(32, 1).to_type(dtype);
        var t = x.exp();
        const int m = 32;

        Tensor[] Solve(CurvatureStructure structure, out IReadOnlyList<NaturalGradient.Capture.ILayerAdapter> layers, out Tensor residual)
        {
            using var pre = new NaturalGradientPreconditioner(net, new GaussianLikelihood(),
                new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = damping });
            net.zero_grad();
            var r = net.call(x);
            pre.Backward(r, t);
            residual = (r - t).detach().squeeze(1);
            layers = pre.Layers;
            var g = pre.GradientMatrices();
            return pre.Solve(g, damping).Select(d => d.detach().clone()).ToArray();
        }

        var tengrad = Solve(CurvatureStructure.Tengrad, out var layers, out var res);
        var block = Solve(CurvatureStructure.BlockDiagonal, out _, out _);
        var jacobians = BruteForce.PerExampleGradients(net, layers, x, (o, _) => o.sum(1), t);   // per layer m × out × in'
        var c = res.to_type(ScalarType.Float64) / m;
        double errT = 0, errB = 0, norm = 0;
        for (int l = 0; l < layers.Count; l++)
        {
            var j = jacobians[l].reshape(m, -1).to_type(ScalarType.Float64);
            var (u, s, vh) = linalg.svd(j, fullMatrices: false);
            var reference = vh.t().mv(s / (s.square() / m + damping) * u.t().mv(c));
            errT += (tengrad[l].flatten().to_type(ScalarType.Float64) - reference).square().sum().item<double>();
            errB += (block[l].flatten().to_type(ScalarType.Float64) - reference).square().sum().item<double>();
            norm += reference.square().sum().item<double>();
        }
        return (Math.Sqrt(errT / norm), Math.Sqrt(errB / norm), Math.Sqrt(norm));
    }

    /// <summary>
    /// Float32 at the usual dampings: eq 40 in float32 is taken where its error estimate is below 1e-3 (at least one
    /// layer here), and the result still agrees with the SVD solve to 1e-4 (measured: 2.5e-5 estimated at λ = 1e-2).
    /// </summary>
    [Theory]
    [InlineData(1e-1)]
    [InlineData(1e-2)]
    public void Float32_TakesTheFloat32WoodburySolveWhereItIsAccurate(double damping)
    {
        long before = NaturalGradient.Curvature.Blocks.TengradBlock.WoodburySolves;
        var (tengrad, _, _) = Errors(ScalarType.Float32, damping);
        Assert.True(NaturalGradient.Curvature.Blocks.TengradBlock.WoodburySolves > before, "no layer took the float32 Woodbury solve");
        Assert.True(tengrad <= 1e-4, $"λ = {damping}: relative error {tengrad:E2} > 1e-4");
    }

    /// <summary>
    /// Tolerances per λ, about 30× the measured errors (float64: 1.7e-14, 9.6e-13, 6.5e-11,
    /// 4.1e-9, 4.4e-7, 3.9e-5; the plain Woodbury form in float64: 1.7e-3 at λ = 1e-10, 2e3 at 1e-14).
    /// The growth as λ falls is that of any solve given g as a float64 vector: the dense block solve has 1.1e-4 at 1e-12.
    /// </summary>
    [Theory]
    [InlineData(1e-2, 1e-12)]
    [InlineData(1e-4, 3e-11)]
    [InlineData(1e-6, 2e-9)]
    [InlineData(1e-8, 1e-7)]
    [InlineData(1e-10, 1e-5)]
    [InlineData(1e-12, 1e-3)]
    public void Float64_AgreesWithTheSvdSolve(double damping, double tolerance)
    {
        var (tengrad, block, norm) = Errors(ScalarType.Float64, damping);
        _out.WriteLine($"λ = {damping:E0}: TENGraD {tengrad:E2}, block {block:E2}, ‖Δ‖ {norm:G4}");
        Assert.True(tengrad <= tolerance, $"relative error {tengrad:E2} > {tolerance:E0} at λ = {damping:E0}");
    }

    /// <summary>
    /// Float32 model (the CLI default). The solve runs in float64, so what is left is the float32 gradient's own
    /// round-off amplified by up to 1/λ (measured 6.2e-6, 5.1e-5, 4.2e-4, 3.4e-3, 2.4e-2; block 7.9e-6, 8.0e-5, 7.5e-4, 5.7e-3, 3.4e-2;
    /// the plain float32 Woodbury form: 14 % at 1e-5).
    /// </summary>
    [Theory]
    [InlineData(1e-2, 1e-4)]
    [InlineData(1e-3, 1e-3)]
    [InlineData(1e-4, 5e-3)]
    [InlineData(1e-5, 3e-2)]
    [InlineData(1e-6, 0.1)]
    public void Float32_AgreesWithTheSvdSolve_AndIsNoWorseThanTheDenseBlock(double damping, double tolerance)
    {
        var (tengrad, block, norm) = Errors(ScalarType.Float32, damping);
        _out.WriteLine($"λ = {damping:E0}: TENGraD {tengrad:E2}, block {block:E2}, ‖Δ‖ {norm:G4}");
        Assert.True(tengrad <= tolerance, $"relative error {tengrad:E2} > {tolerance:E0} at λ = {damping:E0}");
        Assert.True(tengrad <= 1.5 * block, $"TENGraD {tengrad:E2} vs block {block:E2}");
    }

    /// <summary>A gradient with a component outside the row space of J (here random, n &lt; p): the Woodbury-on-the-rest
    /// part must give the dense solve (M + λI)⁻¹ g, M = (1/m) JᵀJ from the per-example Jacobian.</summary>
    [Theory]
    [InlineData(1e-2)]
    [InlineData(1e-6)]
    public void GradientOutsideTheRowSpace_MatchesTheDenseSolve(double damping)
    {
        using var scope = NewDisposeScope();
        var net = TestModels.Mlp(new[] { 3, 12, 2 }, seed: 8);
        var x = TestModels.Inputs(6, 3, seed: 9);
        var t = TestModels.Inputs(6, 2, seed: 10);
        using var pre = new NaturalGradientPreconditioner(net, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = damping });
        pre.Backward(net.call(x), t);
        var layers = pre.Layers;
        manual_seed(13);
        var g = pre.GradientMatrices().Select(m => randn_like(m)).ToList();
        var delta = pre.Solve(g, damping);
        var lik = new GaussianLikelihood();
        var jacobians = BruteForce.PerExampleGradients(net, layers, x, (o, y) => lik.PerExampleLoss(o, y), t);
        for (int l = 0; l < layers.Count; l++)
        {
            var j = jacobians[l].reshape(6, -1);
            var expected = BruteForce.DampedSolve(BruteForce.EmpiricalFisher(j), damping, g[l].flatten());
            TensorAssert.Close(expected, delta[l].flatten(), rtol: damping < 1e-4 ? 1e-7 : 1e-11, label: $"layer {l}");
        }
    }
}
