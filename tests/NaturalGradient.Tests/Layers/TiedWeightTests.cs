using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Auto;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Distributed;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// Weight tying across different modules (an Embedding's table reused as the output Linear's weight, two Linear modules
/// sharing a weight, two Embeddings sharing a table): the tied tensors form one covered layer, whose blocks equal the
/// dense Fisher's (the cases "tied-*" of <see cref="LayerCases"/> run through <see cref="PerExampleGradientTests"/> and
/// <see cref="LayerBlockTests"/>); here: the report, the EKFAC and K-BFGS refusal, auto's choice, K-FAC's expand over the uses,
/// the single-backward empirical path and the exclusion rules.
/// </summary>
[Collection("Torch")]
public class TiedWeightTests
{
    [Fact]
    public void TiedEmbeddingHead_IsOneLayer_AndTheReportSaysWhatTheTensorGets()
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("tied-embedding-head");
        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood,
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Exact, Damping = 1e-2 });
        Assert.Equal(new[] { "mix", "emb+head" }, pc.Capture.Layers.Select(l => l.Name).OrderBy(n => n.Length).ToArray());
        var tied = Assert.IsType<TiedLayerAdapter>(pc.Capture.Layers.Single(l => l.Name == "emb+head").Adapter);
        Assert.Equal(new[] { "emb.weight" }, tied.TiedTensors);
        Assert.False(tied.KroneckerFactored);
        Assert.Equal(6, tied.OutputDim);
        Assert.Equal(3 + 1, tied.InputDim);   // [E b_head]

        var report = pc.Coverage();
        Assert.True(report.CoversEveryTrainableTensor);
        Assert.Equal(new[] { "emb.weight", "mix.weight", "mix.bias", "head.bias" }, report.Entries.Select(e => e.Parameter).ToArray());
        const string treatment = "TENGraD per-layer block, exact Fisher (GGN); tied across layers 'emb' (Embedding) and 'head' (Linear): " +
                                 "one block, per-example gradient summed over the uses";
        Assert.Equal(treatment, report.Entries.Single(e => e.Parameter == "emb.weight").Treatment);
        Assert.Equal(treatment, report.Entries.Single(e => e.Parameter == "head.bias").Treatment);
        Assert.Equal(6 * 3 + 3 * 3 + 3 + 6, report.Entries.Sum(e => e.Count));
    }

    [Theory]
    [InlineData(CurvatureStructure.Ekfac, "ekfac")]
    [InlineData(CurvatureStructure.Kbfgs, "kbfgs")]
    public void KroneckerStructures_RefuseATensorTiedInTransposedLayouts(CurvatureStructure structure, string name)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("tied-embedding-head");
        var ex = Assert.Throws<ModelNotSupportedException>(() =>
            new NaturalGradientPreconditioner(c.Model, c.Likelihood, new PreconditionerOptions { Structure = structure, Damping = 1e-2 }));
        Assert.Equal(
            $"{name} has no Kronecker factorisation for tensor 'emb.weight', which layers 'emb' (Embedding) and 'head' (Linear) use in " +
            "transposed layouts (tied weights): use kfac (a sum of the uses' Kronecker terms), or tengrad, block, diag or auto " +
            "(exact per-example gradients of the tied tensor), " +
            "or exclude these layers with IncludeLayer (the tensor then keeps its plain gradient)", ex.Message);

        // The alternative the message names: both layers excluded, the tensor keeps its plain gradient and says why.
        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood,
            new PreconditionerOptions { Structure = structure, Damping = 1e-2, IncludeLayer = n => n is not ("emb" or "head") });
        var entry = pc.Coverage().Entries.Single(e => e.Parameter == "emb.weight");
        Assert.False(entry.Covered);
        Assert.Equal("plain gradient: tied across layers 'emb' and 'head', and IncludeLayer excludes 'emb' and 'head'", entry.Treatment);
    }

    [Fact]
    public void ExcludingOneUse_LeavesTheTiedTensorToThePlainGradient_WithTheReason()
    {
        // A block from the Embedding's use alone would miss the head's contribution: neither use is covered.
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("tied-embedding-head");
        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood,
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Damping = 1e-2, IncludeLayer = n => n != "head" });
        Assert.Equal(new[] { "mix" }, pc.Capture.Layers.Select(l => l.Name).ToArray());
        var byName = pc.Coverage().Entries.ToDictionary(e => e.Parameter);
        Assert.Equal("plain gradient: tied across layers 'emb' and 'head', and IncludeLayer excludes 'head'", byName["emb.weight"].Treatment);
        Assert.Equal("plain gradient: excluded by IncludeLayer", byName["head.bias"].Treatment);
    }

    [Fact]
    public void Auto_TakesTengradForATransposedTie()
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("tied-embedding-head");
        using var ngd = new NaturalGradientDescent(c.Model, c.Likelihood, new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Auto, Damping = 1e-2 },
        });
        Assert.True(ngd.Step(c.X, c.Y).Applied);
        Assert.IsType<TengradBlock>(((AutoCurvature)ngd.Preconditioner.Curvature).Block("emb+head").Inner);
    }

    [Fact]
    public void KfacOnLinearsSharingAWeight_IsExpandOverTheUsesPositions()
    {
        // W̄ = [W b_a b_b]; use a has ā = [x; 1; 0] and δ_a, use b has ā = [h; 0; 1] and δ_b (h = tanh(a(x))).
        // Expand: A = (1/m) Σᵢ (āₐāₐᵀ + ā_bā_bᵀ), G = (1/m)/2 Σᵢ (δₐδₐᵀ + δ_bδ_bᵀ) for the empirical Fisher.
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("tied-linears");
        var model = (LayerModels.TiedLinears)c.Model;
        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood, new PreconditionerOptions
        {
            Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Empirical, Damping = 1e-2,
            Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Eigen },
        });
        Assert.True(((TiedLayerAdapter)pc.Capture.Layers.Single(l => l.Name == "a+b").Adapter).KroneckerFactored);
        Assert.Equal("K-FAC (expand), empirical Fisher; tied across layers 'a' (Linear) and 'b' (Linear): one block, per-example gradient summed over the uses",
            pc.Coverage().Entries.Single(e => e.Parameter == "a.weight").Treatment);
        pc.Capture.Clear();
        pc.CollectMetric(c.Model.call(c.X), c.Y);
        var block = ((BlockDiagonalCurvature)pc.Curvature).Block("a+b").ToDense();

        pc.Capture.Enabled = false;
        long m = c.X.shape[0];
        var w = model.a.weight!.detach();
        var za = (c.X.matmul(w.t()) + model.a.bias!.detach()).requires_grad_();
        var h = tanh(za);
        var zb = (h.matmul(w.t()) + model.b.bias!.detach()).requires_grad_();
        var loss = c.Likelihood.PerExampleLoss(model.out_.call(tanh(zb)), c.Y).sum();
        var grads = autograd.grad(new[] { loss }, new[] { za, zb });
        var one = ones(m, 1, dtype: ScalarType.Float64);
        var zero = zeros(m, 1, dtype: ScalarType.Float64);
        var aa = cat(new[] { c.X, one, zero }, 1);
        var ab = cat(new[] { h.detach(), zero, one }, 1);
        var expectedA = (aa.t().mm(aa) + ab.t().mm(ab)) / m;
        var expectedG = (grads[0].t().mm(grads[0]) + grads[1].t().mm(grads[1])) / (2.0 * m);
        TensorAssert.Close(kron(expectedG, expectedA), block, rtol: 1e-10, label: "K-FAC expand over the tied uses");
    }

    [Theory]
    [InlineData("tied-embedding-head", "emb+head", false)]
    [InlineData("tied-embedding-head-nobias", "emb+head", false)]
    [InlineData("tied-linears", "a+b", true)]
    [InlineData("tied-embeddings", "left+right", true)]
    [InlineData("tied-convs", "a+b", true)]
    public void EveryTiedCase_IsOneTiedLayer_CoveringEveryTensor(string name, string layer, bool kroneckerFactored)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var capture = new LayerCapture(c.Model);
        var tied = Assert.Single(capture.Layers.Select(l => l.Adapter).OfType<TiedLayerAdapter>());
        Assert.Equal(layer, tied.Name);
        Assert.Equal(kroneckerFactored, tied.KroneckerFactored);
        Assert.Equal(tied.Parameters.Sum(p => p.numel()), ((ILayerAdapter)tied).ParameterCount);
        Assert.Empty(capture.UncoveredTies);
    }

    public static TheoryData<string> SharedAndTied => new() { "embedding", "siamese-residual", "tied-embedding-head", "tied-linears", "tied-embeddings", "tied-convs" };

    [Theory]
    [MemberData(nameof(SharedAndTied))]
    public void SingleBackwardEmpiricalStatistics_UseEveryCall_AndEqualTheLoop(string name)
    {
        // The empirical Fisher from the loss's own backward (no second pass) sees every call of a shared or tied layer.
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var capture = new LayerCapture(c.Model);
        var layers = capture.Layers.Select(l => l.Adapter).ToList();
        var output = c.Model.call(c.X);
        var recorded = capture.Recorded();
        FisherEstimator.RetainOutputGradients(recorded);
        c.Likelihood.Loss(output, c.Y).backward();
        var stats = FisherEstimator.CollectFromLossGradients(recorded, c.X.shape[0]);
        capture.Enabled = false;
        var reference = BruteForce.PerExampleGradients(c.Model, layers, c.X, c.Likelihood.PerExampleLoss, c.Y);
        for (int l = 0; l < layers.Count; l++)
            TensorAssert.Close(reference[l], stats[l].PerSampleGradients(), rtol: 1e-10, label: $"{name}: layer {layers[l].Name}");
    }

    [Theory]
    [InlineData("tied-embedding-head", CurvatureStructure.Tengrad, 1e-2)]
    [InlineData("tied-embedding-head", CurvatureStructure.Diagonal, 1e-2)]
    [InlineData("tied-embedding-head", CurvatureStructure.Kfac, 3e-2)]         // the sum of Kronecker terms; at λ = 1e-2 with inverses
    [InlineData("tied-embedding-head-nobias", CurvatureStructure.Kfac, 3e-2)]  // up to 10 steps old it rises from 0.48 (step 6) to 4.3 (step 10)
    [InlineData("tied-linears", CurvatureStructure.BlockDiagonal, 1e-2)]
    [InlineData("tied-linears", CurvatureStructure.Kfac, 1e-1)]   // K-FAC's expand over two uses on m = 5 diverges at λ = 1e-2
    [InlineData("tied-embeddings", CurvatureStructure.Ekfac, 1e-2)]
    [InlineData("tied-linears", CurvatureStructure.Kbfgs, 1e-1)]
    [InlineData("tied-convs", CurvatureStructure.HessianFree, 1e-2)]
    public void TiedModels_Train(string name, CurvatureStructure structure, double damping)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var ngd = new NaturalGradientDescent(c.Model, c.Likelihood, new NaturalGradientOptions
        {
            LearningRate = 0.3,
            // K-BFGS's secant pairs are changes of the loss gradient: it takes the empirical Fisher only.
            Preconditioner = new PreconditionerOptions
            {
                Structure = structure, Fisher = structure == CurvatureStructure.Kbfgs ? FisherKind.Empirical : FisherKind.Exact, Damping = damping,
            },
        });
        double first = ngd.Step(c.X, c.Y).Loss, last = first;
        for (int step = 0; step < 15; step++) last = ngd.Step(c.X, c.Y).Loss;
        Assert.True(last < 0.5 * first, $"{name}, {structure}: loss {first:G4} → {last:G4}");
    }

    /// <summary>Two ranks that hold the same shard: the gathered batch is the local one twice.</summary>
    private sealed class MirroredRanks : ICommunicator
    {
        public int Rank => 0;
        public int Size => 2;
        public void AllReduce(Tensor tensor, ReduceOperation operation = ReduceOperation.Sum) => tensor.mul_(2);
        public void Broadcast(Tensor tensor, int root = 0) { }
        public Tensor AllGather(Tensor input) => cat(new[] { input, input });
        public void Barrier() { }
        public void Dispose() { }
    }

    [Theory]
    [InlineData("tied-embedding-head")]
    [InlineData("embedding")]
    public void DataParallelGather_KeepsTokensAndSampleDependentActivations(string name)
    {
        // Exact Fisher (s > 1): the tied layer's activations depend on the sample; the Embedding's statistics carry indices.
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var capture = new LayerCapture(c.Model);
        var output = c.Model.call(c.X);
        var local = new FisherEstimator(c.Likelihood, FisherKind.Exact).Collect(capture, capture.Recorded(), output, c.Y);
        Assert.Contains(local, s => s.SampleDependentActivations || s.Tokens is not null);
        var global = new NaturalGradient.Training.DataParallel(new MirroredRanks()).ReduceStatistics(local);
        for (int l = 0; l < local.Count; l++)
        {
            Assert.Equal(local[l].Tokens is null, global[l].Tokens is null);
            Assert.Equal(local[l].SampleDependentActivations, global[l].SampleDependentActivations);
            Assert.Equal(local[l].TransposedPositions, global[l].TransposedPositions);
            long m = local[l].BatchSize, s = local[l].Samples;
            var g = local[l].PerSampleGradients().reshape(s, 1, m, -1);
            var expected = cat(new[] { g, g }, 1).reshape(2 * s * m, -1);   // sample-major rows over the doubled batch
            TensorAssert.Close(expected, global[l].PerSampleGradients().reshape(2 * s * m, -1), rtol: 1e-12, label: $"{name}: layer {local[l].Adapter.Name}");
            Assert.Equal(local[l].Weight / 2, global[l].Weight, 15);
        }
    }
}
