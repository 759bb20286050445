using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Diagnostics;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Methods;

/// <summary>The approximation diagnostics equal the same quantities computed densely from per-example gradients.</summary>
[Collection("Torch")]
public class ApproximationDiagnosticsTests
{
    private static double Cosine(Tensor a, Tensor b) => (a.dot(b) / (a.norm() * b.norm())).item<double>();

    [Fact]
    public void KfacDiagnostics_EqualDenseComputations()
    {
        using var _ = NewDisposeScope();
        const double lambda = 1e-2;
        const int m = 24;
        var model = TestModels.Mlp(new[] { 4, 5, 3 }, seed: 31);
        var x = TestModels.Inputs(m, 4, seed: 32);
        manual_seed(33);
        var y = randint(0, 3, new long[] { m });
        var likelihood = new CategoricalLikelihood();
        var options = new PreconditionerOptions
        {
            Structure = CurvatureStructure.Kfac, Damping = lambda,
            Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Eigenbasis },   // (G ⊗ A + λI)⁻¹: a dense solve is its reference
        };
        using var pre = new NaturalGradientPreconditioner(model, likelihood, options);
        var rows = ApproximationProbe.Run(pre, model, x, y, lambda, fresh: true);

        var layers = pre.Capture.Layers.Select(l => l.Adapter).ToList();
        var perExample = BruteForce.PerExampleGradients(model, layers, x, (o, t) => likelihood.PerExampleLoss(o, t), y);
        Assert.Equal(layers.Count, rows.Count);
        for (int l = 0; l < layers.Count; l++)
        {
            var j = perExample[l].reshape(m, -1);                         // m × p, rows vec(gᵢ) row-major
            var exact = j.t().mm(j) / m;                                  // M_l (empirical Fisher)
            var g = j.mean(new long[] { 0 });
            // K-FAC factors written out: A = (1/m) Σ āāᵀ, G = (1/m) Σ δδᵀ, with δᵢ = gᵢ's rows recovered via ā (T = 1).
            var input = l == 0 ? x : model.named_children().First(c => c.name == "act0").module is nn.Module<Tensor, Tensor> act
                ? act.call(((nn.Module<Tensor, Tensor>)model.named_children().First(c => c.name == "fc0").module).call(x)) : null!;
            var abar = cat(new[] { input, ones(m, 1, dtype: ScalarType.Float64) }, 1).detach();
            var a = abar.t().mm(abar) / m;
            // δᵢ = gᵢ āᵢ / ‖āᵢ‖² (gᵢ = δᵢ āᵢᵀ is rank one).
            var delta = perExample[l].bmm(abar.unsqueeze(2)).squeeze(2) / abar.square().sum(1, keepdim: true);
            var gFactor = delta.t().mm(delta) / m;
            var kfac = kron(gFactor, a);
            double error = ((kfac - exact).norm() / exact.norm()).item<double>();
            var id = eye(exact.shape[0], dtype: ScalarType.Float64);
            double cosine = Cosine(linalg.solve(kfac + lambda * id, g), linalg.solve(exact + lambda * id, g));

            Assert.Equal(layers[l].Name, rows[l].Layer);
            Assert.True(rows[l].Measured);
            Assert.Equal(error, rows[l].RelativeFrobeniusError, 8);
            Assert.Equal(cosine, rows[l].DirectionCosine, 8);
            Assert.InRange(rows[l].RelativeFrobeniusError, 1e-3, 10);    // K-FAC is not exact for m > 1
        }
    }

    [Fact]
    public void ExactBlocks_HaveZeroError_AndCosineOne_AndLargeLayersAreSkipped()
    {
        using var _ = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 4, 5, 3 }, seed: 34);
        var x = TestModels.Inputs(16, 4, seed: 35);
        manual_seed(36);
        var y = randint(0, 3, new long[] { 16 });
        using var pre = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Damping = 1e-2 });
        var rows = ApproximationProbe.Run(pre, model, x, y, 1e-2, fresh: true);
        Assert.All(rows, r => Assert.True(r.RelativeFrobeniusError < 1e-12 && Math.Abs(r.DirectionCosine - 1) < 1e-10, r.ToString()));
        var small = ApproximationProbe.Run(pre, model, x, y, 1e-2, fresh: true, maxBlockParameters: 20);
        Assert.False(small[0].Measured);   // fc0 has 25 parameters
        Assert.True(small[1].Measured);    // fc1 has 18
    }
}
