using TorchSharp;
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// <see cref="NaturalGradientPreconditioner.Precondition"/> called again with no backward pass in between would turn the
/// natural gradient (F + λI)⁻¹g into (F + λI)⁻²g (on a 4-16-1 MLP with K-FAC the largest entry of .grad went from 1.75
/// to 266). It is refused before any work, .grad untouched; loops with a backward pass before each call, including
/// those that collect the metric less often than they step, are not.
/// </summary>
[Collection("Torch")]
public class PreconditionTwiceTests
{
    private const string Message =
        "Precondition was called again on the gradients it already preconditioned (no backward pass since the last call); " +
        "run Backward (or loss.backward()) before each Precondition";

    private static Module<Tensor, Tensor> Net()
    {
        manual_seed(41);
        return Sequential(("fc0", Linear(4, 16)), ("act0", Tanh()), ("fc1", Linear(16, 1)));
    }

    private static (Tensor X, Tensor Y) Batch(int seed)
    {
        manual_seed(seed);
        var x = randn(32, 4);
        return (x, x.sum(1, keepdim: true).sin());
    }

    private static NaturalGradientPreconditioner Preconditioner(Module<Tensor, Tensor> net, CurvatureStructure structure) =>
        new(net, new GaussianLikelihood(), new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Empirical, Damping = 1e-2 });

    private static List<Tensor> Grads(Module net) => net.parameters().Select(p => p.grad!.clone()).ToList();

    [Theory]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Tengrad)]
    [InlineData(CurvatureStructure.Diagonal)]
    [InlineData(CurvatureStructure.HessianFree)]
    public void SecondCall_WithoutBackward_IsRefused_AndLeavesTheNaturalGradient(CurvatureStructure structure)
    {
        using var net = Net();
        using var pre = Preconditioner(net, structure);
        var (x, y) = Batch(42);
        pre.Backward(net.call(x), y);
        Assert.True(pre.Precondition().Applied);
        var natural = Grads(net);
        var e = Assert.Throws<InvalidOperationException>(() => pre.Precondition());
        Assert.Equal(Message, e.Message);
        var after = Grads(net);
        for (int i = 0; i < natural.Count; i++) TensorAssert.Close(natural[i], after[i], rtol: 0, label: $"parameter {i}");
    }

    [Fact]
    public void EveryStep_WithItsBackward_IsNotRefused()
    {
        using var net = Net();
        using var pre = Preconditioner(net, CurvatureStructure.Kfac);
        var sgd = optim.SGD(net.parameters(), 0.05);
        for (int step = 0; step < 4; step++)
        {
            var (x, y) = Batch(50 + step);
            sgd.zero_grad();
            pre.Backward(net.call(x), y);
            Assert.True(pre.Precondition().Applied);
            sgd.step();
        }
    }

    [Fact]
    public void MetricCollectedLessOftenThanTheSteps_IsNotRefused()
    {
        using var net = Net();
        using var pre = Preconditioner(net, CurvatureStructure.Kfac);
        var likelihood = new GaussianLikelihood();
        var sgd = optim.SGD(net.parameters(), 0.05);
        for (int step = 0; step < 6; step++)
        {
            var (x, y) = Batch(60 + step);
            sgd.zero_grad();
            var output = net.call(x);
            if (step % 3 == 0) pre.CollectMetric(output, y);
            likelihood.Loss(output, y).backward();
            Assert.True(pre.Precondition().Applied);
            sgd.step();
        }
    }

    [Fact]
    public void GradientsAccumulatedOverTwoBackwardPasses_AreNotRefused()
    {
        using var net = Net();
        using var pre = Preconditioner(net, CurvatureStructure.Kfac);
        var (x, y) = Batch(70);
        pre.Backward(net.call(x), y);
        pre.Precondition();
        // No zero_grad: the next backward adds to the natural gradient, which is then a new gradient to precondition.
        pre.Backward(net.call(x), y);
        Assert.True(pre.Precondition().Applied);
    }

    [Fact]
    public void ZeroGradient_PreconditionedAgain_IsNotRefused()
    {
        // A zero gradient stays zero: calling again changes nothing, so it is not refused.
        using var net = Net();
        using var pre = Preconditioner(net, CurvatureStructure.Kfac);
        var (x, y) = Batch(80);
        pre.Backward(net.call(x), y);
        using (no_grad()) foreach (var p in net.parameters()) p.grad!.zero_();
        pre.Precondition();
        Assert.True(pre.Precondition().Applied);
        foreach (var p in net.parameters()) Assert.Equal(0.0, p.grad!.abs().max().ToDouble());
    }
}
