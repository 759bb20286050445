using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// A per-token head flattened to [m·T, V] rows (the usual language-model loss) gives the likelihood m·T rows for a batch
/// of m sequences. The exact Fisher's one backward per output-Fisher column then mixes an example's rows: on this model
/// its blocks were 99–199 % off Hessian-free's exact Gauss-Newton products. Refused with one line before anything
/// changes; the Monte-Carlo and empirical Fishers and Hessian-free train it.
/// </summary>
[Collection("Torch")]
public class PerPositionOutputTests
{
    private sealed class TinyLm : Module<Tensor, Tensor>
    {
        private readonly Embedding emb;
        private readonly Linear mix, head;
        public TinyLm() : base("lm")
        {
            emb = Embedding(6, 4, dtype: ScalarType.Float64);
            mix = Linear(4, 4, dtype: ScalarType.Float64);
            head = Linear(4, 6, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor tokens) => head.call(tanh(mix.call(emb.call(tokens)))).flatten(0, 1);
    }

    /// <summary>Positions folded into the Linear's batch: [m, T, d] → [m·T, d] → Linear → tanh → [m, T·o].</summary>
    private sealed class Folded : Module<Tensor, Tensor>
    {
        private readonly Linear fc;
        public Folded() : base("folded") { fc = Linear(3, 2, dtype: ScalarType.Float64); RegisterComponents(); }
        public override Tensor forward(Tensor x) => tanh(fc.call(x.reshape(x.shape[0] * x.shape[1], -1))).reshape(x.shape[0], -1);
    }

    /// <summary>
    /// A layer whose batch holds positions (more rows than the output's examples): its per-example gradients are not
    /// defined, and the block structures' blocks missed the cross-position terms (the empirical block was 59 % off the
    /// brute-force empirical Fisher of the 5 examples). Refused for those structures and every Fisher kind; K-FAC (rows as
    /// positions) and Hessian-free take it.
    /// </summary>
    [Theory]
    [InlineData(CurvatureStructure.BlockDiagonal, FisherKind.Empirical)]
    [InlineData(CurvatureStructure.Tengrad, FisherKind.Exact)]
    [InlineData(CurvatureStructure.Diagonal, FisherKind.MonteCarlo)]
    public void LayerWithPositionsInItsBatch_IsRefusedForPerExampleStructures(CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        manual_seed(53);
        var model = new Folded();
        var x = randn(5, 4, 3, dtype: ScalarType.Float64);
        var y = randn(5, 8, dtype: ScalarType.Float64);
        using var pre = new NaturalGradientPreconditioner(model, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = structure, Fisher = fisher, Damping = 1e-2 });
        var e = Assert.Throws<ModelNotSupportedException>(() => pre.Backward(model.call(x), y));
        Assert.Equal("layer 'fc' (Linear) saw a batch of 20 rows, but the output has 5 (one per example): its rows are not examples " +
            "(positions folded into the batch, as in x.reshape(m·T, d)?), so per-example gradients are not defined for " +
            $"{structure.ToString().ToLowerInvariant()}; keep the batch dimension through the layer (Linear and Conv2d take [m, T, …, d] inputs), " +
            "or use kfac or ekfac (rows as positions) or HessianFree", e.Message);
        Assert.All(model.parameters(), p => Assert.True(p.grad is null));
        Assert.Equal(0, pre.StepCount);

        foreach (var accepted in new[] { CurvatureStructure.Kfac, CurvatureStructure.HessianFree })
        {
            using var ok = new NaturalGradientPreconditioner(model, new GaussianLikelihood(),
                new PreconditionerOptions { Structure = accepted, Fisher = fisher, Damping = 1e-2 });
            ok.Backward(model.call(x), y);
            Assert.True(ok.Precondition().Applied);
        }
    }

    /// <summary>x → fc0, plus pos applied to a 1 × 4 constant and broadcast over the batch, → head.</summary>
    private sealed class Broadcast : Module<Tensor, Tensor>
    {
        private readonly Linear fc0, pos, head;
        private readonly Tensor constant;
        public Broadcast() : base("broadcast")
        {
            manual_seed(54);
            fc0 = Linear(3, 4, dtype: ScalarType.Float64);
            pos = Linear(2, 4, dtype: ScalarType.Float64);
            head = Linear(4, 2, dtype: ScalarType.Float64);
            constant = randn(1, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => head.call(tanh(fc0.call(x) + pos.call(constant)));
    }

    /// <summary>
    /// A layer on one broadcast row sees a batch of 1 while the others see the m examples: its per-example gradients are
    /// not separated (the exact structure's Jacobian could not stack them: libtorch's "Sizes of tensors must match"; a
    /// block per layer was that of the summed gradient). Refused with one line before anything changes, for the
    /// per-example structures, every Fisher and both entry points; K-FAC and HF take it, and so does the exact structure
    /// with the layer left out.
    /// </summary>
    [Theory]
    [InlineData(CurvatureStructure.Exact, FisherKind.Empirical)]
    [InlineData(CurvatureStructure.Exact, FisherKind.MonteCarlo)]
    [InlineData(CurvatureStructure.BlockDiagonal, FisherKind.Empirical)]
    [InlineData(CurvatureStructure.Tengrad, FisherKind.MonteCarlo)]
    [InlineData(CurvatureStructure.Diagonal, FisherKind.Empirical)]
    [InlineData(CurvatureStructure.Auto, FisherKind.Empirical)]
    public void LayerOnABroadcastInput_IsRefusedForPerExampleStructures(CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        var model = new Broadcast();
        var x = randn(5, 3, dtype: ScalarType.Float64);
        var y = randn(5, 2, dtype: ScalarType.Float64);
        string expected = $"{structure.ToString().ToLowerInvariant()} needs every layer's gradients per example of the batch, but layer 'pos' (Linear) " +
            "saw a batch of 1 rows and layer 'fc0' (Linear) a batch of 5: a layer applied to an input that is not the batch's examples " +
            "(a constant or a parameter broadcast over the batch?) has no per-example gradients for those examples; exclude layer 'pos' " +
            "with IncludeLayer (it then keeps its plain gradient), or use kfac or ekfac (rows as positions) or HessianFree";
        var options = new PreconditionerOptions { Structure = structure, Fisher = fisher, Damping = 1e-2 };
        using (var pre = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), options))
        {
            Assert.Equal(expected, Assert.Throws<ModelNotSupportedException>(() => pre.Backward(model.call(x), y)).Message);
            Assert.All(model.parameters(), p => Assert.True(p.grad is null));
            Assert.Equal(0, pre.StepCount);
        }
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        using (var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions { LearningRate = 0.1, Preconditioner = options }))
            Assert.Equal(expected, Assert.Throws<ModelNotSupportedException>(() => ngd.Step(x, y)).Message);
        foreach (var (p, b) in model.parameters().Zip(before)) TensorAssert.Close(b, p, rtol: 0, label: "no weight moves");

        foreach (var accepted in new[] { options with { Structure = CurvatureStructure.Kfac }, options with { Structure = CurvatureStructure.HessianFree },
                     options with { IncludeLayer = name => name != "pos" } })
        {
            using var ok = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions { LearningRate = 0.1, Preconditioner = accepted });
            Assert.True(ok.Step(x, y).Applied);
        }
    }

    private static (Tensor Tokens, Tensor Next) Batch()
    {
        manual_seed(51);
        var tokens = randint(0, 6, new long[] { 4, 3 });
        return (tokens, (tokens + 1).remainder(6).flatten());
    }

    [Theory]
    [InlineData(CurvatureStructure.BlockDiagonal)]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Tengrad)]
    public void ExactFisher_OfRowsThatAreNotExamples_IsRefused(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        manual_seed(52);
        var model = new TinyLm();
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        var (tokens, next) = Batch();
        using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-2 },
        });
        var e = Assert.Throws<ModelNotSupportedException>(() => ngd.Step(tokens, next));
        Assert.Equal("the exact Fisher needs one output row per example of the model's batch, but the output has 12 rows and layer 'emb' (Embedding) " +
            "saw a batch of 4 (positions flattened into rows, as for per-token outputs?): use Fisher = FisherKind.MonteCarlo or Empirical " +
            "(per-example gradients summed over an example's rows), or Structure = CurvatureStructure.HessianFree (exact Gauss-Newton products)", e.Message);
        var after = model.parameters().ToList();
        for (int i = 0; i < before.Count; i++) TensorAssert.Close(before[i], after[i], rtol: 0, label: $"parameter {i}");
    }

    [Theory]
    [InlineData(CurvatureStructure.BlockDiagonal, FisherKind.MonteCarlo)]
    [InlineData(CurvatureStructure.BlockDiagonal, FisherKind.Empirical)]
    [InlineData(CurvatureStructure.HessianFree, FisherKind.Exact)]
    public void TheAlternatives_Train(CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        manual_seed(52);
        var model = new TinyLm();
        var (tokens, next) = Batch();
        using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.3,
            // One Monte-Carlo sample of 4 sequences is too noisy a metric at λ = 1e-2: take 16.
            Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = fisher, Damping = 1e-2, MonteCarloSamples = 16 },
        });
        double first = ngd.Step(tokens, next).Loss, last = first;
        for (int step = 0; step < 20; step++) last = ngd.Step(tokens, next).Loss;
        Assert.True(last < 0.5 * first, $"{structure}, {fisher}: {first:F4} → {last:F4}");
    }
}
