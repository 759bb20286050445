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
/// A Conv2d the adapter cannot factor (groups &gt; 1, reflect or circular padding, 'same' padding of an even kernel) is
/// like any uncovered kind (docs/LAYERS.md): its tensors keep their plain gradient, the coverage report gives the reason,
/// and the other layers are covered. Before, building any optimiser over such a model threw NotSupportedException.
/// </summary>
[Collection("Torch")]
public class UnsupportedConvolutionTests
{
    private sealed class Net : Module<Tensor, Tensor>
    {
        public readonly Conv2d c;
        public readonly Linear head;
        public Net(Conv2d conv) : base("net")
        {
            c = conv;
            head = Linear(4 * 5 * 5, 3, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => head.call(tanh(c.call(x)).flatten(1));
    }

    public static TheoryData<string, string> Convolutions => new()
    {
        { "groups", "layer 'c' (Conv2d) has groups = 2; only groups = 1 is supported" },
        { "reflect", "layer 'c' (Conv2d) uses 'Reflect' padding; only zero padding is supported" },
        { "circular", "layer 'c' (Conv2d) uses 'Circular' padding; only zero padding is supported" },
        { "same-even", "layer 'c' (Conv2d) uses 'Same' padding with an even kernel extent (2×2), which pads one side more; only padding both sides alike is supported (an odd kernel, or explicit padding)" },
    };

    private static Conv2d Make(string kind) => kind switch
    {
        "groups" => Conv2d(2, 4, 3, padding: 1, groups: 2, dtype: ScalarType.Float64),
        "reflect" => Conv2d(2, 4, 3, padding: 1, padding_mode: PaddingModes.Reflect, dtype: ScalarType.Float64),
        "circular" => Conv2d(2, 4, 3, padding: 1, padding_mode: PaddingModes.Circular, dtype: ScalarType.Float64),
        "same-even" => Conv2d(2, 4, 2, padding: Padding.Same, dtype: ScalarType.Float64),
        _ => throw new ArgumentException(kind),
    };

    [Theory]
    [MemberData(nameof(Convolutions))]
    public void UnsupportedConv2d_KeepsItsPlainGradient_AndTheReportSaysWhy(string kind, string reason)
    {
        using var scope = NewDisposeScope();
        manual_seed(41);
        var net = new Net(Make(kind));
        var x = randn(6, 2, 5, 5, dtype: ScalarType.Float64);
        var y = randint(0, 3, new long[] { 6 });
        var likelihood = new CategoricalLikelihood();

        // The plain gradient of the conv's weight, from an ordinary backward pass at the initial weights.
        var w0 = net.c.weight!.detach().clone();
        likelihood.Loss(net.call(x), y).backward();
        var plain = net.c.weight!.grad!.clone();
        net.zero_grad();

        using var ngd = new NaturalGradientDescent(net, likelihood, new NaturalGradientOptions
        {
            LearningRate = 0.1,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-2 },
        });
        var report = ngd.Preconditioner.Coverage();
        var conv = report.Entries.Single(e => e.Parameter == "c.weight");
        Assert.False(conv.Covered);
        Assert.Equal("plain gradient: " + reason, conv.Treatment);
        Assert.True(report.Entries.Single(e => e.Parameter == "head.weight").Covered);
        Assert.True(ngd.Step(x, y).Applied);
        TensorAssert.Close(w0 - 0.1 * plain, net.c.weight!, rtol: 1e-12, label: $"{kind}: plain step of the conv weight");
    }
}
