using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// (b) Larger batches: the block is kron(G, A) of explicitly built factors, and Precondition solves the damped
/// Kronecker system formed explicitly — (G + √λ/π I) ⊗ (A + π√λ I) for factored damping, G ⊗ A + λI for eigenbasis damping.
/// </summary>
[Collection("Torch")]
public class KfacKroneckerTests
{
    private const int M = 9;

    /// <summary>Explicit A = (1/m) Σ āāᵀ from the layer inputs and G = (1/m) Σ δδᵀ with δᵢ = the bias column of gᵢ.</summary>
    private static (List<ILayerAdapter> Layers, IReadOnlyList<LayerStatistics> Statistics, List<(Tensor A, Tensor G)> Factors) Problem()
    {
        var model = TestModels.Mlp(new[] { 4, 6, 3 });
        var x = TestModels.Inputs(M, 4);
        var y = KfacFixtures.Labels(M, 3);
        var likelihood = new CategoricalLikelihood();
        var (layers, statistics) = KfacFixtures.Collect(model, x, y, likelihood);
        var perExample = BruteForce.PerExampleGradients(model, layers, x, likelihood.PerExampleLoss, y);

        var factors = new List<(Tensor, Tensor)>();
        var input = x;
        for (int l = 0; l < layers.Count; l++)
        {
            var aBar = cat(new[] { input, ones(M, 1, dtype: ScalarType.Float64) }, 1);      // m × in'
            var delta = perExample[l].select(2, layers[l].InputDim - 1);                    // ∇_b ℓᵢ = δᵢ: m × out
            factors.Add((aBar.t().mm(aBar).div(M), delta.t().mm(delta).div(M)));
            using (no_grad()) input = tanh(((TorchSharp.Modules.Linear)layers[l].Module).forward(input));
        }
        return (layers, statistics, factors);
    }

    [Fact]
    public void Kfac_ToDense_EqualsExplicitKroneckerOfBruteForceFactors()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, factors) = Problem();
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = new KfacBlock(layers[l]);
            block.Update(statistics[l], 0);
            TensorAssert.Close(factors[l].A, block.ActivationFactor, rtol: 1e-12, label: $"A of layer {l}");
            TensorAssert.Close(factors[l].G, block.OutputGradientFactor, rtol: 1e-10, label: $"G of layer {l}");
            TensorAssert.Close(kron(factors[l].G, factors[l].A), block.ToDense(), rtol: 1e-10, label: $"G ⊗ A of layer {l}");
        }
    }

    [Theory]
    [InlineData(KfacInverseMethod.Eigen, 0.1)]
    [InlineData(KfacInverseMethod.Eigen, 1e-3)]
    [InlineData(KfacInverseMethod.Cholesky, 0.1)]
    [InlineData(KfacInverseMethod.Cholesky, 1e-3)]
    public void Kfac_FactoredDamping_PreconditionEqualsExplicitDampedKroneckerSolve(KfacInverseMethod method, double damping)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, factors) = Problem();
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = new KfacBlock(layers[l], new KfacOptions { InverseMethod = method, DampingMode = KfacDampingMode.Factored });
            block.Update(statistics[l], 0);
            var (a, g) = factors[l];
            long dimA = a.shape[0], dimG = g.shape[0];
            double pi = Math.Sqrt((a.trace().item<double>() / dimA) / (g.trace().item<double>() / dimG));
            var damped = kron(g + Math.Sqrt(damping) / pi * eye(dimG, dtype: g.dtype), a + pi * Math.Sqrt(damping) * eye(dimA, dtype: a.dtype));
            var v = KfacFixtures.RandomMatrix(layers[l], 10 + l);
            var expected = linalg.solve(damped, v.reshape(-1)).reshape(v.shape);
            TensorAssert.Close(expected, block.Precondition(v, damping), rtol: 1e-9, label: $"layer {l}");
        }
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(1e-3)]
    public void Kfac_EigenbasisDamping_PreconditionEqualsSolveWithKroneckerPlusLambdaIdentity(double damping)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, factors) = Problem();
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = new KfacBlock(layers[l], new KfacOptions { InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Eigenbasis });
            block.Update(statistics[l], 0);
            var v = KfacFixtures.RandomMatrix(layers[l], 20 + l);
            var expected = BruteForce.DampedSolve(kron(factors[l].G, factors[l].A), damping, v.reshape(-1)).reshape(v.shape);
            TensorAssert.Close(expected, block.Precondition(v, damping), rtol: 1e-9, label: $"layer {l}");
        }
    }

    [Fact]
    public void Kfac_MonteCarloFisher_OutputGradientFactorAveragesEverySampledTarget()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 4, 6, 3 });
        var x = TestModels.Inputs(M, 4);
        const int k = 3;
        var (layers, statistics) = KfacFixtures.Collect(model, x, null, new CategoricalLikelihood(), FisherKind.MonteCarlo, k);
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = new KfacBlock(layers[l]);
            block.Update(statistics[l], 0);
            var delta = statistics[l].OutputGradients.reshape(k * M, -1);                // (k·m) × out
            TensorAssert.Close(delta.t().mm(delta).div(k * M), block.OutputGradientFactor, rtol: 1e-12, label: $"G of layer {l}");
            var a = statistics[l].Activations.squeeze(1);
            TensorAssert.Close(a.t().mm(a).div(M), block.ActivationFactor, rtol: 1e-12, label: $"A of layer {l}");
        }
    }

    [Theory]
    [InlineData("kfac-eigen-factored")]
    [InlineData("kfac-eigen-eigenbasis")]
    [InlineData("kfac-cholesky-factored")]
    [InlineData("ekfac")]
    public void Float32Statistics_MatchFloat64WithinSinglePrecision(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, _) = Problem();
        for (int l = 0; l < layers.Count; l++)
        {
            var s = statistics[l];
            var single = new LayerStatistics(s.Adapter, s.Activations.to_type(ScalarType.Float32), s.OutputGradients.to_type(ScalarType.Float32), s.Weight);
            using var block64 = KfacFixtures.CreateBlock(configuration, layers[l]);
            using var block32 = KfacFixtures.CreateBlock(configuration, layers[l]);
            block64.Update(s, 0);
            block32.Update(single, 0);
            var v = KfacFixtures.RandomMatrix(layers[l], 40 + l);
            var delta32 = block32.Precondition(v.to_type(ScalarType.Float32), 1e-3);
            Assert.Equal(ScalarType.Float32, delta32.dtype);
            TensorAssert.Close(block64.Precondition(v, 1e-3), delta32, rtol: 1e-4, label: $"layer {l}");
        }
    }
}
