using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// A covered tensor also used outside its module (a functional call, or the module run through forward(x) besides
/// call(x)) would get a block that misses that use: the first step refuses it by name, before any parameter moves.
/// </summary>
[Collection("Torch")]
public class OutsideUseTests
{
    /// <summary>Embedding(6, 3) → tanh → mean over T → functional.linear(h, emb.weight): the tied head as a functional call.</summary>
    private sealed class FunctionalHead : nn.Module<Tensor, Tensor>
    {
        public readonly Embedding emb;
        public FunctionalHead() : base("functional-head")
        {
            manual_seed(31);
            emb = nn.Embedding(6, 3, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor tokens) => nn.functional.linear(tanh(emb.call(tokens)).mean(new long[] { 1 }), emb.weight!);
    }

    /// <summary>fc(x) + 0.5 · fc.forward(x²): the second use skips the hooks.</summary>
    private sealed class ForwardBypass : nn.Module<Tensor, Tensor>
    {
        public readonly Linear fc;
        public ForwardBypass() : base("forward-bypass")
        {
            manual_seed(32);
            fc = nn.Linear(3, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => fc.call(x) + 0.5 * fc.forward(x * x);
    }

    [Theory]
    [InlineData(FisherKind.Empirical)]
    [InlineData(FisherKind.MonteCarlo)]
    public void FunctionalUseOfACoveredTensor_IsRefusedByName_BeforeAnyParameterMoves(FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        var model = new FunctionalHead();
        var before = model.emb.weight!.detach().clone();
        using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = fisher, Damping = 1e-2 },
        });
        var ex = Assert.Throws<TensorUsedOutsideLayerException>(() => ngd.Step(LayerModels.Tokens(33, 4, 5, 6), LayerModels.Tokens(34, 4, 1, 6).squeeze(1)));
        Assert.Equal("emb.weight", ex.TensorName);
        Assert.StartsWith("tensor 'emb.weight' of layer 'emb' (Embedding) receives gradient that the layer's recorded calls do not give (relative difference ",
            ex.Message);
        Assert.EndsWith("): it is also used outside the module (a functional call such as functional.linear(x, emb.weight)) or the module also " +
                        "runs through forward(x). Use the tensor through modules called with call(x) (a second module holding the same tensor " +
                        "is covered with it as a tied tensor), or exclude layer 'emb' with IncludeLayer (its tensors then keep their plain gradient)",
            ex.Message);
        Assert.True(model.emb.weight!.detach().eq(before).all().item<bool>(), "no parameter moved");
    }

    [Fact]
    public void ModuleAlsoRunThroughForward_IsRefused()
    {
        using var scope = NewDisposeScope();
        var model = new ForwardBypass();
        using var pc = new NaturalGradientPreconditioner(model, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.BlockDiagonal, Fisher = FisherKind.Exact, Damping = 1e-2 });
        var ex = Assert.Throws<TensorUsedOutsideLayerException>(() => pc.Backward(model.call(LayerModels.Normal(35, 4, 3)), LayerModels.Normal(36, 4, 2)));
        Assert.Equal("fc", ex.LayerName);
        Assert.Equal("fc.weight", ex.TensorName);
    }

    [Theory]
    [MemberData(nameof(LayerCases.All), MemberType = typeof(LayerCases))]
    public void EveryCoveredCase_PassesTheCheck(string name)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var capture = new LayerCapture(c.Model);
        var output = c.Model.call(c.X);
        capture.ThrowIfUsedOutside(c.Likelihood.Loss(output, c.Y), capture.Recorded());
    }
}
