using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Methods;

/// <summary>K-BFGS (Goldfarb, Ren &amp; Bahamou 2020): secant condition, positive definiteness, L-BFGS = BFGS, the step formula.</summary>
[Collection("Torch")]
public class KbfgsTests
{
    private static double MinEigenvalue(Tensor h) => linalg.eigvalsh((h + h.t()) / 2).min().item<double>();

    [Fact]
    public void DoubleDampedPairs_SatisfyTheSecantCondition_AndKeepHPositiveDefinite()
    {
        using var _ = NewDisposeScope();
        manual_seed(1);
        const int d = 6;
        using var h = new DenseBfgsInverse(d, 0.5, ScalarType.Float64);
        int negativeCurvaturePairs = 0;
        for (int k = 0; k < 40; k++)
        {
            var s = randn(d, dtype: ScalarType.Float64);
            var y = randn(d, dtype: ScalarType.Float64);                 // sᵀy of either sign
            if (s.dot(y).item<double>() < 0) negativeCurvaturePairs++;
            var hy = h.Apply(y.unsqueeze(1)).squeeze(1);
            var (st, yt) = DoubleDamping.Apply(s, y, hy, 0.2, 0.1);
            Assert.True(st.dot(yt).item<double>() >= 0.1 * st.dot(st).item<double>() * (1 - 1e-12), "LM half: s̃ᵀỹ ≥ μ₂ s̃ᵀs̃");
            h.Update(st, yt);
            TensorAssert.Close(st, h.ToDense().mv(yt), rtol: 1e-9, label: $"secant H ỹ = s̃ at update {k}");
            Assert.True(MinEigenvalue(h.ToDense()) > 0, $"H lost positive definiteness at update {k}");
        }
        Assert.True(negativeCurvaturePairs > 5, "the test must include pairs with sᵀy < 0");
    }

    [Fact]
    public void LimitedMemory_WithEnoughMemory_EqualsDenseBfgs_AndAlwaysSatisfiesTheNewestSecant()
    {
        using var _ = NewDisposeScope();
        manual_seed(2);
        const int d = 5;
        using var dense = new DenseBfgsInverse(d, 0.3, ScalarType.Float64);
        using var full = new LimitedMemoryBfgsInverse(d, 100, 0.3, ScalarType.Float64);
        using var short3 = new LimitedMemoryBfgsInverse(d, 3, 0.3, ScalarType.Float64);
        for (int k = 0; k < 8; k++)
        {
            var s = randn(d, dtype: ScalarType.Float64);
            var y = s * 2 + 0.3 * randn(d, dtype: ScalarType.Float64);  // sᵀy > 0
            dense.Update(s, y); full.Update(s, y); short3.Update(s, y);
            TensorAssert.Close(s, short3.ToDense().mv(y), rtol: 1e-9, label: "L-BFGS newest secant");
        }
        TensorAssert.Close(dense.ToDense(), full.ToDense(), rtol: 1e-9, label: "L-BFGS(∞) = BFGS");
        var m = randn(d, 4, dtype: ScalarType.Float64);
        TensorAssert.Close(dense.ToDense().mm(m), full.Apply(m), rtol: 1e-9, label: "two-loop on a matrix");
        Assert.Equal(3, short3.Count);
        Assert.True(MinEigenvalue(short3.ToDense()) > 0);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    public void Block_PreconditionsAsHgGHa_AndItsSecantPairComesFromPreActivations(int memory)
    {
        using var _ = NewDisposeScope();
        const double lambda = 1e-2;
        var model = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 5);
        var x = TestModels.Inputs(20, 4, seed: 6);
        manual_seed(7);
        var labels = randint(0, 3, new long[] { 20 });
        var likelihood = new CategoricalLikelihood();
        using var pre = new NaturalGradientPreconditioner(model, likelihood,
            new PreconditionerOptions { Structure = CurvatureStructure.Kbfgs, Damping = lambda, Kbfgs = new KbfgsOptions { Memory = memory } });
        pre.Backward(model.call(x), labels);
        var curvature = (KbfgsCurvature)pre.Curvature;
        var layers = pre.Layers;
        var g = pre.GradientMatrices();
        var delta = pre.Solve(g, lambda);

        // The step: Δ = H_g g (A + √λ I)⁻¹ with H_g⁰ = I / (tr G₀/out + √λ) and A = (1/m) Σ ā āᵀ of the batch.
        var stats = Collect(pre, model, x, labels, likelihood);
        for (int l = 0; l < layers.Count; l++)
        {
            var block = curvature.Block(layers[l].Name);
            var a = KroneckerFactorsReference(stats[l]).A;
            var gFactor = KroneckerFactorsReference(stats[l]).G;
            double h0 = 1 / (gFactor.trace().item<double>() / gFactor.shape[0] + Math.Sqrt(lambda));
            var expected = h0 * g[l].mm(linalg.inv(a + Math.Sqrt(lambda) * eye(a.shape[0], dtype: a.dtype)));
            TensorAssert.Close(expected, delta[l], rtol: 1e-9, label: $"Δ of {layers[l].Name}");
            Assert.NotNull(block.InverseOutputGradientFactor);
        }

        // Move the weights, collect the same batch again: s = W̄'ā̄' − W̄ā̄, y = δ̄' − δ̄; after the update H ỹ = s̃.
        var before = layers.Select(l => (W: l.WeightMatrix().clone(), H: curvature.Block(l.Name).InverseOutputGradientFactor!.ToDense())).ToList();
        using (no_grad()) for (int l = 0; l < layers.Count; l++) layers[l].AddToWeights(-0.5 * delta[l]);
        var after = Collect(pre, model, x, labels, likelihood);
        var old = stats;
        Assert.Equal(layers.Count, curvature.UpdateSecant(after));
        for (int l = 0; l < layers.Count; l++)
        {
            var meanA = old[l].Activations.reshape(-1, old[l].Activations.shape[2]).mean(new long[] { 0 });
            var meanA2 = after[l].Activations.reshape(-1, after[l].Activations.shape[2]).mean(new long[] { 0 });
            var s = layers[l].WeightMatrix().mv(meanA2) - before[l].W.mv(meanA);
            var y = after[l].OutputGradients[0].reshape(-1, layers[l].OutputDim).mean(new long[] { 0 })
                  - old[l].OutputGradients[0].reshape(-1, layers[l].OutputDim).mean(new long[] { 0 });
            var (st, yt) = DoubleDamping.Apply(s, y, before[l].H.mv(y), 0.2, Math.Sqrt(lambda));
            var h = curvature.Block(layers[l].Name).InverseOutputGradientFactor!.ToDense();
            TensorAssert.Close(st, h.mv(yt), rtol: 1e-8, label: $"secant of {layers[l].Name}");
            Assert.True(MinEigenvalue(h) > 0);
            Assert.Equal(1, curvature.Block(layers[l].Name).SecantUpdates);
        }
    }

    /// <summary>
    /// The library's own loop: <see cref="NaturalGradient.Optim.NaturalGradientDescent.Step"/> with K-BFGS takes the
    /// "after" half of each layer's secant pair itself (a second forward-backward on the same batch at the new weights),
    /// so H_g is a BFGS matrix after one step: H ỹ = s̃ for the pair written out from the pre-activations and their loss
    /// gradients before and after the step, with H⁰ = I / (tr G₀/out + √λ). Before, only the trainer did this pass, and
    /// a user's NaturalGradientDescent kept H_g = H⁰ forever.
    /// </summary>
    [Fact]
    public void NaturalGradientDescent_Kbfgs_UpdatesHgFromTheStepsSecantPair()
    {
        using var _ = NewDisposeScope();
        const double lambda = 1e-2;
        var model = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 5);
        var x = TestModels.Inputs(20, 4, seed: 6);
        manual_seed(7);
        var labels = randint(0, 3, new long[] { 20 });
        var likelihood = new CategoricalLikelihood();
        using var ngd = new NaturalGradient.Optim.NaturalGradientDescent(model, likelihood, new NaturalGradient.Optim.NaturalGradientOptions
        {
            LearningRate = 0.5,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kbfgs, Damping = lambda },
        });
        var pre = ngd.Preconditioner;
        var layers = pre.Capture.Layers.Select(l => l.Adapter).ToList();
        var weightsBefore = layers.Select(l => l.WeightMatrix().detach().clone()).ToList();
        var before = Collect(pre, model, x, labels, likelihood);
        model.zero_grad();
        Assert.True(ngd.Step(x, labels).Applied);
        var after = Collect(pre, model, x, labels, likelihood);
        var curvature = (KbfgsCurvature)pre.Curvature;
        for (int l = 0; l < layers.Count; l++)
        {
            var block = curvature.Block(layers[l].Name);
            Assert.Equal(1, block.SecantUpdates);
            double h0 = 1 / (KroneckerFactorsReference(before[l]).G.trace().item<double>() / layers[l].OutputDim + Math.Sqrt(lambda));
            var meanA = before[l].Activations.reshape(-1, before[l].Activations.shape[2]).mean(new long[] { 0 });
            var meanA2 = after[l].Activations.reshape(-1, after[l].Activations.shape[2]).mean(new long[] { 0 });
            var s = layers[l].WeightMatrix().mv(meanA2) - weightsBefore[l].mv(meanA);
            var y = after[l].OutputGradients[0].reshape(-1, layers[l].OutputDim).mean(new long[] { 0 })
                  - before[l].OutputGradients[0].reshape(-1, layers[l].OutputDim).mean(new long[] { 0 });
            var (st, yt) = DoubleDamping.Apply(s, y, h0 * y, 0.2, Math.Min(Math.Sqrt(lambda), 0.9));
            TensorAssert.Close(st, block.InverseOutputGradientFactor!.ToDense().mv(yt), rtol: 1e-8, label: $"secant of {layers[l].Name}");
        }
        Assert.Equal("kbfgs takes its secant pairs on the step's own batch: call Step without metricInputs (Parameter 'metricInputs')",
            Assert.Throws<ArgumentException>(() => ngd.Step(x, labels, metricInputs: x)).Message);
        Assert.Equal(1, ngd.StepCount);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new NaturalGradient.Optim.NaturalGradientDescent(model, likelihood,
            new NaturalGradient.Optim.NaturalGradientOptions { Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kbfgs, Fisher = FisherKind.Exact } }));
        Assert.StartsWith("kbfgs builds its secant pairs from loss gradients: it needs Fisher = FisherKind.Empirical, got Exact (Parameter 'Fisher')", e.Message);
    }

    /// <summary>Empirical-Fisher statistics of (x, labels) at the current weights, through the preconditioner's capture.</summary>
    private static IReadOnlyList<LayerStatistics> Collect(NaturalGradientPreconditioner pre, nn.Module<Tensor, Tensor> model, Tensor x, Tensor labels, ILikelihood likelihood)
    {
        pre.Capture.Clear();
        var output = model.call(x);
        var stats = new FisherEstimator(likelihood).Collect(pre.Capture, pre.Capture.Recorded(), output, labels);
        pre.Capture.Clear();
        return stats;
    }

    /// <summary>A = (1/m) Σ ā āᵀ and G = w Σ δ δᵀ written out (T = 1, one gradient sample).</summary>
    private static (Tensor A, Tensor G) KroneckerFactorsReference(LayerStatistics s)
    {
        var a = s.Activations.squeeze(1);
        var d = s.OutputGradients[0].squeeze(1);
        return (a.t().mm(a) / a.shape[0], d.t().mm(d) * s.Weight);
    }

    [Fact]
    public void Trainer_Kbfgs_LowersTheLoss_AndRefusesANonEmpiricalFisher()
    {
        using var data = TinyData.Classification();
        var settings = new NaturalGradient.Training.OptimizerSettings { Name = "kbfgs", LearningRate = 0.3, Momentum = 0, Damping = 1e-1, KlClip = 1e-2 };
        var result = new NaturalGradient.Training.Trainer(new NaturalGradient.Training.Models.ModelSpec { Hidden = new[] { 8 } }, settings,
            new NaturalGradient.Training.TrainerOptions { Epochs = 4, BatchSize = 16, Seed = 3, Dtype = ScalarType.Float32 }).Run(data);
        Assert.True(result.Final.TrainLoss < 0.5 * result.Epochs[0].TrainLoss, $"{result.Epochs[0].TrainLoss} → {result.Final.TrainLoss}");
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new NaturalGradient.Training.Trainer(
            new NaturalGradient.Training.Models.ModelSpec { Hidden = new[] { 8 } }, settings with { Fisher = FisherKind.MonteCarlo },
            new NaturalGradient.Training.TrainerOptions { Epochs = 1, BatchSize = 16 }).Run(data));
        Assert.Equal("Fisher", ex.ParamName);
    }
}
