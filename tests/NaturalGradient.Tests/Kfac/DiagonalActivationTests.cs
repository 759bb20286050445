using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Tests.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// K-FAC and EKFAC keep an index layer's A = diag(token counts)/m as a length-V vector: the block is G ⊗ diag(a) and
/// every preconditioned gradient equals a dense solve built from the layer's statistics by per-example loops.
/// </summary>
[Collection("Torch")]
public class DiagonalActivationTests
{
    /// <summary>The statistics of the index layer of <paramref name="name"/> (Embedding, or Embeddings tied together).</summary>
    private static LayerStatistics IndexStatistics(string name, FisherKind fisher)
    {
        var c = LayerCases.Create(name);
        var capture = new LayerCapture(c.Model);
        var output = c.Model.call(c.X);
        var stats = new FisherEstimator(c.Likelihood, fisher, monteCarloSamples: 2).Collect(capture, capture.Recorded(), output, c.Y);
        return stats.Single(s => s.Tokens is not null);
    }

    /// <summary>Reference factors and per-sample gradients by loops over samples, examples and positions.</summary>
    private static (Tensor A, Tensor G, Tensor[] Gradients) Reference(LayerStatistics s)
    {
        var tokens = s.Tokens!.data<long>().ToArray();
        long samples = s.Samples, m = s.BatchSize, t = s.Positions, v = s.Adapter.InputDim, o = s.Adapter.OutputDim;
        var a = zeros(v, dtype: ScalarType.Float64);
        for (long i = 0; i < m; i++)
            for (long p = 0; p < t; p++) a[tokens[i * t + p]] += 1.0 / m;
        var g = zeros(o, o, dtype: ScalarType.Float64);
        var gradients = new List<Tensor>();
        for (long r = 0; r < samples; r++)
            for (long i = 0; i < m; i++)
            {
                var gi = zeros(o, v, dtype: ScalarType.Float64);
                for (long p = 0; p < t; p++)
                {
                    var delta = s.OutputGradients[r, i, p];
                    g += outer(delta, delta) * (s.Weight / t);
                    gi[TensorIndex.Colon, tokens[i * t + p]] += delta;
                }
                gradients.Add(gi);
            }
        return (a, g, gradients.ToArray());
    }

    private static Tensor Solve(Tensor matrix, Tensor gradient) =>
        linalg.solve(matrix, gradient.reshape(-1)).reshape(gradient.shape);

    [Theory]
    [InlineData("embedding", KfacInverseMethod.Cholesky, KfacDampingMode.Factored)]
    [InlineData("embedding", KfacInverseMethod.Eigen, KfacDampingMode.Factored)]
    [InlineData("embedding", KfacInverseMethod.Eigen, KfacDampingMode.Eigenbasis)]
    [InlineData("tied-embeddings", KfacInverseMethod.Cholesky, KfacDampingMode.Factored)]
    [InlineData("tied-embeddings", KfacInverseMethod.Eigen, KfacDampingMode.Eigenbasis)]
    public void Kfac_DiagonalA_EqualsTheDenseKroneckerBlockAndItsSolve(string name, KfacInverseMethod inverse, KfacDampingMode mode)
    {
        using var scope = NewDisposeScope();
        const double lambda = 0.05;
        var s = IndexStatistics(name, FisherKind.MonteCarlo);
        var (a, g, _) = Reference(s);
        using var block = new KfacBlock(s.Adapter, new KfacOptions { InverseMethod = inverse, DampingMode = mode });
        block.Update(s, 0);
        Assert.Equal(new[] { s.Adapter.InputDim }, block.ActivationFactor.shape);
        TensorAssert.Close(a, block.ActivationFactor, rtol: 1e-13, label: "diag(A)");
        TensorAssert.Close(g, block.OutputGradientFactor, rtol: 1e-12, label: "G");
        TensorAssert.Close(kron(g, diag(a)), block.ToDense(), rtol: 1e-12, label: "G ⊗ diag(a)");
        manual_seed(11);
        var v = randn(s.Adapter.OutputDim, s.Adapter.InputDim, dtype: ScalarType.Float64);
        TensorAssert.Close(g.mm(v).mm(diag(a)), block.Multiply(v), rtol: 1e-12, label: "product");

        long o = s.Adapter.OutputDim, vocabulary = s.Adapter.InputDim;
        Tensor dense;
        if (mode == KfacDampingMode.Eigenbasis) dense = kron(g, diag(a)) + lambda * eye(o * vocabulary, dtype: ScalarType.Float64);
        else
        {
            double pi = Math.Sqrt((a.sum().item<double>() / vocabulary) / (g.trace().item<double>() / o));
            dense = kron(g + Math.Sqrt(lambda) / pi * eye(o, dtype: ScalarType.Float64), diag(a) + pi * Math.Sqrt(lambda) * eye(vocabulary, dtype: ScalarType.Float64));
        }
        TensorAssert.Close(Solve(dense, v), block.Precondition(v, lambda), rtol: 1e-9, label: $"{name}, {inverse}, {mode}: solve");
    }

    [Theory]
    [InlineData("embedding", KfacDampingMode.Factored)]
    [InlineData("embedding", KfacDampingMode.Eigenbasis)]
    [InlineData("tied-embeddings", KfacDampingMode.Factored)]
    public void Ekfac_DiagonalA_ProjectsByQgOnly_AndEqualsTheDenseSolve(string name, KfacDampingMode mode)
    {
        using var scope = NewDisposeScope();
        const double lambda = 0.05;
        var s = IndexStatistics(name, FisherKind.MonteCarlo);
        var (a, g, gradients) = Reference(s);
        using var block = new EkfacBlock(s.Adapter, new KfacOptions { DampingMode = mode });
        block.Update(s, 0);
        long o = s.Adapter.OutputDim, vocabulary = s.Adapter.InputDim;

        // Q_A = I (no eigh of A); S = w Σ (Q_Gᵀ gᵢₛ)² with Q_G the block's own basis of G (its columns' signs are arbitrary).
        var qg = block.OutputGradientBasis;
        TensorAssert.Close(g, qg.mm(diag(linalg.eigvalsh(g))).mm(qg.t()), rtol: 1e-10, atol: 1e-14, label: "Q_G diagonalises G");
        var scaling = gradients.Select(x => qg.t().mm(x).square()).Aggregate((p, q) => p + q) * s.Weight;
        TensorAssert.Close(scaling, block.Scaling, rtol: 1e-10, atol: 1e-14, label: "S");
        var basis = kron(qg.contiguous(), eye(vocabulary, dtype: ScalarType.Float64));
        TensorAssert.Close(basis.mm(diag(scaling.reshape(-1))).mm(basis.t()), block.ToDense(), rtol: 1e-10, atol: 1e-14, label: "block");

        var eg = linalg.eigvalsh(g).clamp_min(0);
        Tensor divisor;
        if (mode == KfacDampingMode.Eigenbasis) divisor = scaling + lambda;
        else
        {
            double pi = Math.Sqrt((a.sum().item<double>() / vocabulary) / (g.trace().item<double>() / o));
            divisor = scaling + pi * Math.Sqrt(lambda) * eg.unsqueeze(1) + Math.Sqrt(lambda) / pi * a.unsqueeze(0) + lambda;
        }
        var dense = basis.mm(diag(divisor.reshape(-1))).mm(basis.t());
        manual_seed(12);
        var v = randn(o, vocabulary, dtype: ScalarType.Float64);
        TensorAssert.Close(Solve(dense, v), block.Precondition(v, lambda), rtol: 1e-9, label: $"{name}, {mode}: solve");
    }

    [Fact]
    public void TheDampedInverse_AndTheBasis_AreVectorsAndSurviveAStateRoundTrip()
    {
        using var scope = NewDisposeScope();
        var s = IndexStatistics("embedding", FisherKind.Exact);
        long vocabulary = s.Adapter.InputDim;
        foreach (var make in new Func<ICurvatureBlock>[]
                 {
                     () => new KfacBlock(s.Adapter), () => new KfacBlock(s.Adapter, new KfacOptions { InverseMethod = KfacInverseMethod.Eigen }),
                     () => new EkfacBlock(s.Adapter),
                 })
        {
            using var block = make();
            block.Update(s, 0);
            manual_seed(13);
            var v = randn(s.Adapter.OutputDim, vocabulary, dtype: ScalarType.Float64);
            var before = block.Precondition(v, 0.1);
            using var state = new NaturalGradient.Optim.NaturalGradientStateDict();
            ((ICurvatureBlockState)block).ExportState("emb.", state);
            Assert.DoesNotContain("emb.activation_basis", state.Tensors.Keys);
            foreach (var key in new[] { "emb.activation_factor", "emb.activation_inverse", "emb.activation_eigenvalues" })
                if (state.HasTensor(key)) Assert.Equal(new[] { vocabulary }, state.Tensors[key].shape);
            using var restored = make();
            ((ICurvatureBlockState)restored).ImportState("emb.", state);
            TensorAssert.Close(before, restored.Precondition(v, 0.1), rtol: 0, label: $"{block.GetType().Name}: solve after a state round trip");
            TensorAssert.Close(block.ToDense(), restored.ToDense(), rtol: 0, label: $"{block.GetType().Name}: block after a state round trip");
        }
    }

    [Theory]
    [InlineData(CurvatureStructure.Kfac, KfacInverseMethod.Eigen)]
    [InlineData(CurvatureStructure.Kfac, KfacInverseMethod.Cholesky)]
    [InlineData(CurvatureStructure.Ekfac, KfacInverseMethod.Eigen)]
    public void AnEmbeddingModel_ResumedFromItsStateDict_TakesTheUninterruptedSteps(CurvatureStructure structure, KfacInverseMethod inverse)
    {
        const int steps = 7, stopAfter = 4, batch = 5;
        var x = LayerModels.Tokens(40, 20, 6, 30);
        var y = LayerModels.Tokens(41, 20, 1, 3).squeeze(1);
        var likelihood = new NaturalGradient.Likelihoods.CategoricalLikelihood();
        var options = new NaturalGradient.Optim.NaturalGradientOptions
        {
            LearningRate = 0.3, Momentum = 0.9,
            Preconditioner = new NaturalGradient.Preconditioning.PreconditionerOptions
            {
                Structure = structure, Fisher = FisherKind.MonteCarlo, Damping = 1e-2, Seed = 7,
                Kfac = new KfacOptions { FactorDecay = 0.9, InverseUpdatePeriod = 3, InverseMethod = inverse },
            },
        };
        void Run(NaturalGradient.Optim.NaturalGradientDescent ngd, int from, int to)
        {
            for (int s = from; s < to; s++)
            {
                using var scope = NewDisposeScope();
                long start = s * batch % x.shape[0];
                ngd.Step(x.narrow(0, start, batch), y.narrow(0, start, batch));
            }
        }
        LayerModels.EmbeddingModel Model(long seed) { manual_seed(seed); return new LayerModels.EmbeddingModel(30, 4, 5, 3); }

        Lifecycle.ResumeCheck.AssertResumedRunEqualsStraightRun(Model, likelihood, options, Run, steps, stopAfter, $"{structure} {inverse}: ",
            state => Assert.Equal(new[] { 30L }, state.Tensors.Single(kv => kv.Key.EndsWith("emb.activation_factor")).Value.shape));
    }

    [Fact]
    public void Kbfgs_KeepsADenseDiagonalA_ForAnEmbedding_AndTrains()
    {
        // K-BFGS forms A from one-hot rows: the dense diag(token counts)/m (its V is limited by MaxFactorDimension).
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("embedding");
        using var ngd = new NaturalGradient.Optim.NaturalGradientDescent(c.Model, c.Likelihood, new NaturalGradient.Optim.NaturalGradientOptions
        {
            LearningRate = 0.3,
            Preconditioner = new NaturalGradient.Preconditioning.PreconditionerOptions { Structure = CurvatureStructure.Kbfgs, Damping = 1e-1 },
        });
        double first = ngd.Step(c.X, c.Y).Loss, last = first;
        var a = ((NaturalGradient.Curvature.Kbfgs.KbfgsCurvature)ngd.Preconditioner.Curvature).Block("emb").ActivationFactor;
        var counts = bincount(c.X.flatten(), minlength: 7).to_type(ScalarType.Float64) / c.X.shape[0];
        TensorAssert.Close(diag(counts), a, rtol: 1e-14, label: "K-BFGS A = diag(counts)/m, dense");
        // With its BFGS updates of H_g (taken by NaturalGradientDescent.Step) the loss went 1.055 → 0.55 (step 40) → 0.35
        // (step 60) → 0.077 (step 110); with H_g frozen at H⁰ it had halved by step 40.
        for (int step = 1; step < 60; step++) last = ngd.Step(c.X, c.Y).Loss;
        Assert.True(last < 0.5 * first, $"K-BFGS on an Embedding: loss {first:F4} → {last:F4}");
    }
}
