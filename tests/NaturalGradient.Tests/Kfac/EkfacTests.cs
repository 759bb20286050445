using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// (d) EKFAC (George et al. 2018): S = w Σ (Q_Gᵀ gᵢ Q_A)² against brute force; with S = eᴳeᴬᵀ it is K-FAC with
/// eigenbasis damping; and it is at least as close (Frobenius) to the exact block as K-FAC.
/// </summary>
[Collection("Torch")]
public class EkfacTests
{
    private const int M = 8;

    /// <summary>A seeded problem: "linear" (MLP 4-6-3, both layers) or "conv" (conv net, conv and linear layers).</summary>
    private static (nn.Module<Tensor, Tensor> Model, Tensor X, Tensor Y, List<ILayerAdapter> Layers, IReadOnlyList<LayerStatistics> Statistics) Problem(string kind, long seed = 0)
    {
        var likelihood = new CategoricalLikelihood();
        nn.Module<Tensor, Tensor> model;
        Tensor x;
        if (kind == "linear")
        {
            model = TestModels.Mlp(new[] { 4, 6, 3 }, seed: seed);
            x = TestModels.Inputs(M, 4, seed: seed + 1);
        }
        else
        {
            var shape = new ConvShape(2, 3, 3, 1, 1, 1, true, 4);
            model = CreateConvNet(shape, seed: seed).Model;
            x = Images(M, shape, seed: seed + 1);
        }
        var y = Labels(M, 3, seed: seed + 2);
        var (layers, statistics) = Collect(model, x, y, likelihood);
        return (model, x, y, layers, statistics);
    }

    private static List<Tensor> PerExampleGradients(nn.Module<Tensor, Tensor> model, List<ILayerAdapter> layers, Tensor x, Tensor y) =>
        BruteForce.PerExampleGradients(model, layers, x, new CategoricalLikelihood().PerExampleLoss, y);

    [Theory]
    [InlineData("linear")]
    [InlineData("conv")]
    public void Ekfac_Scaling_EqualsBruteForceProjectedSecondMoments(string kind)
    {
        using var scope = NewDisposeScope();
        var (model, x, y, layers, statistics) = Problem(kind);
        var perExample = PerExampleGradients(model, layers, x, y);
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = new EkfacBlock(layers[l]);
            block.Update(statistics[l], 0);
            var qa = block.ActivationBasis;
            var qg = block.OutputGradientBasis;
            AssertDiagonalizes(qa, block.ActivationFactor, $"Q_A, layer {l}");
            AssertDiagonalizes(qg, block.OutputGradientFactor, $"Q_G, layer {l}");
            var expected = qg.t().matmul(perExample[l]).matmul(qa).square().mean(new long[] { 0 });
            TensorAssert.Close(expected, block.Scaling, rtol: 1e-10, label: $"S of layer {l} ({layers[l].KindName})");
        }
    }

    /// <summary>
    /// A basis refresh on a step whose factors are not due (T_f = 3, T_inv = 4: step 4) restarts S from that step's
    /// batch in the new basis, the brute-force (1/m) Σᵢ (Q_Gᵀ gᵢ Q_A)² with Q from the block; a step with neither
    /// (step 5) keeps S; the next factor step (6) averages its batch in, S = β S₄ + (1 − β) S₆.
    /// </summary>
    [Theory]
    [InlineData("linear")]
    [InlineData("conv")]
    public void Ekfac_BasisRefreshWithoutFactorUpdate_RestartsScalingFromThatBatch(string kind)
    {
        using var scope = NewDisposeScope();
        const double decay = 0.8;
        var problems = Enumerable.Range(0, 7).Select(s => Problem(kind, seed: 10 * s)).ToList();
        for (int l = 0; l < problems[0].Layers.Count; l++)
        {
            using var block = new EkfacBlock(problems[0].Layers[l], new KfacOptions { FactorDecay = decay, FactorUpdatePeriod = 3, InverseUpdatePeriod = 4 });
            for (int step = 0; step <= 4; step++) block.Update(problems[step].Statistics[l], step);
            Assert.Equal(2, block.InverseRefreshCount);
            var qa = block.ActivationBasis;
            var qg = block.OutputGradientBasis;
            Tensor BatchScaling(int step)
            {
                var p = problems[step];
                var perExample = PerExampleGradients(p.Model, p.Layers, p.X, p.Y)[l];
                return qg.t().matmul(perExample).matmul(qa).square().mean(new long[] { 0 });
            }
            var s4 = BatchScaling(4);
            TensorAssert.Close(s4, block.Scaling, rtol: 1e-10, label: $"S after the refresh at step 4, layer {l}");
            block.Update(problems[5].Statistics[l], 5);
            TensorAssert.Close(s4, block.Scaling, rtol: 1e-12, label: $"S at step 5 (nothing due), layer {l}");
            block.Update(problems[6].Statistics[l], 6);
            TensorAssert.Close(s4.mul(decay).add_(BatchScaling(6), alpha: 1 - decay), block.Scaling, rtol: 1e-10,
                label: $"S at the factor step 6, layer {l}");
        }
    }

    private static void AssertDiagonalizes(Tensor q, Tensor factor, string label)
    {
        var rotated = q.t().mm(factor).mm(q);
        TensorAssert.Close(rotated.diagonal().diag(), rotated, rtol: 1e-10, label: label);
        TensorAssert.Close(eye(q.shape[0], dtype: q.dtype), q.t().mm(q), atol: 1e-12, label: label + " orthogonal");
    }

    [Theory]
    [InlineData(FisherKind.MonteCarlo)]
    [InlineData(FisherKind.Exact)]
    public void Ekfac_SeveralGradientSamples_ScalingWeightsEverySample(FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 4, 6, 3 });
        var x = TestModels.Inputs(M, 4);
        var (layers, statistics) = Collect(model, x, null, new CategoricalLikelihood(), fisher, samples: 3);
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = new EkfacBlock(layers[l]);
            block.Update(statistics[l], 0);
            Assert.Equal(3, statistics[l].Samples);
            var perSample = statistics[l].PerSampleGradients();                  // n × out × in', n = 3m
            var expected = block.OutputGradientBasis.t().matmul(perSample).matmul(block.ActivationBasis).square()
                .sum(new long[] { 0 }).mul(statistics[l].Weight);
            TensorAssert.Close(expected, block.Scaling, rtol: 1e-10, label: $"S of layer {l}");
        }
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("conv")]
    public void Ekfac_WithKroneckerEigenvalueScaling_ReproducesKfacEigenbasisDamping(string kind)
    {
        using var scope = NewDisposeScope();
        var (_, _, _, layers, statistics) = Problem(kind);
        for (int l = 0; l < layers.Count; l++)
        {
            using var ekfac = new EkfacBlock(layers[l], new KfacOptions { DampingMode = KfacDampingMode.Eigenbasis });
            using var kfac = new KfacBlock(layers[l], new KfacOptions { InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Eigenbasis });
            ekfac.Update(statistics[l], 0);
            kfac.Update(statistics[l], 0);
            ekfac.UseKroneckerScaling();
            var v = RandomMatrix(layers[l], 30 + l);
            TensorAssert.Close(kfac.ToDense(), ekfac.ToDense(), rtol: 1e-10, label: $"dense, layer {l}");
            TensorAssert.Close(kfac.Multiply(v), ekfac.Multiply(v), rtol: 1e-10, label: $"multiply, layer {l}");
            TensorAssert.Close(kfac.Precondition(v, 1e-2), ekfac.Precondition(v, 1e-2), rtol: 1e-10, label: $"precondition, layer {l}");
        }
    }

    [Theory]
    [InlineData("linear")]
    [InlineData("conv")]
    public void Ekfac_FactoredDamping_WithKroneckerEigenvalueScaling_ReproducesKfacFactoredDamping(string kind)
    {
        using var scope = NewDisposeScope();
        var (_, _, _, layers, statistics) = Problem(kind);
        for (int l = 0; l < layers.Count; l++)
        {
            using var ekfac = new EkfacBlock(layers[l]);                                             // default: factored damping
            using var kfac = new KfacBlock(layers[l], new KfacOptions { InverseMethod = KfacInverseMethod.Cholesky });
            ekfac.Update(statistics[l], 0);
            kfac.Update(statistics[l], 0);
            ekfac.UseKroneckerScaling();
            var v = RandomMatrix(layers[l], 40 + l);
            foreach (double damping in new[] { 1.0, 1e-2, 1e-4 })
                TensorAssert.Close(kfac.Precondition(v, damping), ekfac.Precondition(v, damping), rtol: 1e-9, label: $"λ = {damping}, layer {l}");
        }
    }

    [Fact]
    public void Ekfac_FactoredDamping_BoundsTheStepWhereTheScalingVanishes()
    {
        // Where S ≈ 0 but the factors' eigenvalues are not, exact damping divides by λ, factored damping by
        // S + π√λ eᴳ + (√λ/π) eᴬ + λ, as K-FAC does.
        using var scope = NewDisposeScope();
        var (_, _, _, layers, statistics) = Problem("linear");
        using var exact = new EkfacBlock(layers[0], new KfacOptions { DampingMode = KfacDampingMode.Eigenbasis });
        using var factored = new EkfacBlock(layers[0]);
        exact.Update(statistics[0], 0);
        factored.Update(statistics[0], 0);
        var v = RandomMatrix(layers[0], 7);
        double damping = 1e-4;
        double exactNorm = exact.Precondition(v, damping).norm().item<double>();
        double factoredNorm = factored.Precondition(v, damping).norm().item<double>();
        // Same basis and S; the factored divisor adds non-negative terms to every entry, so every projected entry shrinks.
        Assert.True(factoredNorm < exactNorm, $"factored {factoredNorm:G4} vs exact {exactNorm:G4}");
        var ratio = (exact.OutputGradientBasis.t().mm(factored.Precondition(v, damping)).mm(exact.ActivationBasis).abs()
                     - exact.OutputGradientBasis.t().mm(exact.Precondition(v, damping)).mm(exact.ActivationBasis).abs()).max().item<double>();
        Assert.True(ratio <= 1e-12, $"a projected entry grew by {ratio:G4}");
    }

    [Theory]
    [InlineData("linear", 0)]
    [InlineData("linear", 5)]
    [InlineData("conv", 0)]
    public void Ekfac_IsAtLeastAsCloseToTheExactBlockAsKfac(string kind, long seed)
    {
        using var scope = NewDisposeScope();
        var (model, x, y, layers, statistics) = Problem(kind, seed);
        var perExample = PerExampleGradients(model, layers, x, y);
        for (int l = 0; l < layers.Count; l++)
        {
            var exact = EmpiricalBlock(perExample[l]);
            using var ekfac = new EkfacBlock(layers[l]);
            using var kfac = new KfacBlock(layers[l]);
            ekfac.Update(statistics[l], 0);
            kfac.Update(statistics[l], 0);
            double ekfacError = (ekfac.ToDense() - exact).norm().item<double>();
            double kfacError = (kfac.ToDense() - exact).norm().item<double>();
            Assert.True(ekfacError <= kfacError * (1 + 1e-12),
                $"layer {l} ({layers[l].KindName}): ‖EKFAC − F‖ = {ekfacError:G6} > ‖K-FAC − F‖ = {kfacError:G6}");
        }
    }
}
