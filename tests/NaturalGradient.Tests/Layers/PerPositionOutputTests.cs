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
