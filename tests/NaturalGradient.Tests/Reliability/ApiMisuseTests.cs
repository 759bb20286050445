using NaturalGradient.Curvature;
using NaturalGradient.Damping;
using NaturalGradient.Diagnostics;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// Misuse of the library's entry points (a batch that does not fit the model, an output without a graph, use after
/// Dispose, a model converted after the optimiser was built, a learning rate set out of range) is refused before any
/// work with one line naming the tensor or option, and no weight moves. Before, these reached libtorch (whose message
/// came with advice about non-finite values), a misleading LayerNotObservedException, "Tensor invalid -- empty handle",
/// or were accepted (a negative learning rate ascended the loss).
/// </summary>
[Collection("Torch")]
public class ApiMisuseTests
{
    private static Module<Tensor, Tensor> Net()
    {
        manual_seed(31);
        return Sequential(("fc0", Linear(4, 8)), ("act0", Tanh()), ("fc1", Linear(8, 1)));
    }

    private static (Tensor X, Tensor Y) Batch()
    {
        manual_seed(32);
        var x = randn(16, 4);
        return (x, x.sum(1, keepdim: true).sin());
    }

    private static NaturalGradientDescent Ngd(Module<Tensor, Tensor> net, CurvatureStructure structure = CurvatureStructure.Kfac) =>
        new(net, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, Momentum = 0.9,
            Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-2 },
        });

    private static List<Tensor> Weights(Module net) => net.parameters().Select(p => p.detach().clone()).ToList();

    private static void Unchanged(List<Tensor> before, Module net)
    {
        var after = net.parameters().ToList();
        for (int i = 0; i < before.Count; i++) TensorAssert.Close(before[i], after[i], rtol: 0, label: $"parameter {i}");
    }

    public static TheoryData<string, string> BadBatches => new()
    {
        { "null x", "Value cannot be null. (Parameter 'x')" },
        { "empty x", "x holds no example (shape [0, 4]); a batch needs at least one row (Parameter 'x')" },
        { "float64 x", "x is Float64 but the model's parameters are Float32: convert the batch (x.to_type(ScalarType.Float32)) or the model (model.to(ScalarType.Float64)) (Parameter 'x')" },
        { "x on meta", "x is on meta but the model is on cpu: move x to cpu (Parameter 'x')" },
        { "y on meta", "y is on meta but the model is on cpu: move y to cpu (Parameter 'y')" },
        { "null y", "Value cannot be null. (Parameter 'y')" },
        { "float64 metric inputs", "metricInputs is Float64 but the model's parameters are Float32: convert the batch (metricInputs.to_type(ScalarType.Float32)) or the model (model.to(ScalarType.Float64)) (Parameter 'metricInputs')" },
    };

    [Theory]
    [MemberData(nameof(BadBatches))]
    public void Step_BatchThatDoesNotFitTheModel_IsRefusedBeforeAnyWork(string what, string message)
    {
        using var scope = NewDisposeScope();
        var net = Net();
        using var ngd = Ngd(net);
        var (x, y) = Batch();
        var before = Weights(net);
        Func<StepReport> step = what switch
        {
            "null x" => () => ngd.Step(null!, y),
            "empty x" => () => ngd.Step(x[..0], y[..0]),
            "float64 x" => () => ngd.Step(x.to_type(ScalarType.Float64), y),
            "x on meta" => () => ngd.Step(x.to(META), y),
            "y on meta" => () => ngd.Step(x, y.to(META)),
            "null y" => () => ngd.Step(x, null!),
            "float64 metric inputs" => () => ngd.Step(x, y, metricInputs: x.to_type(ScalarType.Float64)),
            _ => throw new ArgumentException(what),
        };
        var e = Assert.ThrowsAny<ArgumentException>(() => step());
        Assert.Equal(message, e.Message);
        Unchanged(before, net);
        Assert.Equal(0, ngd.StepCount);
        Assert.Equal(1, ngd.Step(x, y).Step);   // the optimiser is still usable
    }

    [Fact]
    public void Backward_OfAnOutputWithoutGraph_IsRefusedNamingTheCause()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        using var pre = new NaturalGradientPreconditioner(net, new GaussianLikelihood(), new PreconditionerOptions { Structure = CurvatureStructure.Kfac });
        var (x, y) = Batch();
        const string message = "output does not require grad: it was computed under no_grad() or detached, so it has no graph to take gradients " +
            "and the Fisher statistics from; pass the output of model.call(x) itself, with gradients enabled (Parameter 'output')";
        Tensor noGrad;
        using (no_grad()) noGrad = net.call(x);
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => pre.Backward(noGrad, y)).Message);
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => pre.Backward(net.call(x).detach(), y)).Message);
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => pre.CollectMetric(net.call(x).detach())).Message);
        Assert.Equal("target is on meta but the output is on cpu: move target to cpu (Parameter 'target')",
            Assert.Throws<ArgumentException>(() => pre.Backward(net.call(x), y.to(META))).Message);
        Assert.Equal(0, pre.StepCount);
        Assert.All(net.parameters(), p => Assert.True(p.grad is null));
    }

    [Theory]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.HessianFree)]
    public void UseAfterDispose_IsObjectDisposed(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var net = Net();
        var (x, y) = Batch();
        var ngd = Ngd(net, structure);
        ngd.Step(x, y);
        ngd.Dispose();
        ngd.Dispose();   // twice is harmless
        const string message = "this NaturalGradientPreconditioner (or its NaturalGradientDescent) was disposed; build a new one";
        Assert.Equal(message, Assert.Throws<ObjectDisposedException>(() => ngd.Step(x, y)).Message);
        var pre = new NaturalGradientPreconditioner(net, new GaussianLikelihood(), new PreconditionerOptions { Structure = structure });
        pre.Backward(net.call(x), y);
        pre.Dispose();
        Assert.Equal(message, Assert.Throws<ObjectDisposedException>(() => pre.Precondition()).Message);
        Assert.Equal(message, Assert.Throws<ObjectDisposedException>(() => pre.Backward(net.call(x), y)).Message);
    }

    [Fact]
    public void ModelConvertedAfterTheOptimiserWasBuilt_IsRefusedNamingTheLayer()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        using var ngd = Ngd(net);
        net.to(ScalarType.Float64);
        var (x, y) = Batch();
        var e = Assert.Throws<InvalidOperationException>(() => ngd.Step(x.to_type(ScalarType.Float64), y.to_type(ScalarType.Float64)));
        Assert.Equal("the parameters of layer 'fc0' (Linear) were replaced after the preconditioner was built (model.to(dtype or device) replaces them): " +
            "build the preconditioner (or NaturalGradientDescent) after converting or moving the model", e.Message);
        using var rebuilt = Ngd(net);
        Assert.True(rebuilt.Step(x.to_type(ScalarType.Float64), y.to_type(ScalarType.Float64)).Applied);
    }

    [Theory]
    [InlineData(-5.0)]
    [InlineData(0.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void LearningRateSetOutOfRange_IsRefused_AndTheRateIsKept(double lr)
    {
        using var scope = NewDisposeScope();
        using var ngd = Ngd(Net());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ngd.LearningRate = lr);
        Assert.StartsWith($"LearningRate must be a finite number > 0, got {lr} (Parameter 'LearningRate')", e.Message);
        Assert.Equal(0.1, ngd.LearningRate);
        ngd.LearningRate = 0.05;
        Assert.Equal(0.05, ngd.LearningRate);
    }

    [Fact]
    public void UndefinedDampingSchedule_AndNullArguments_AreRefused()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new NaturalGradientOptions { DampingSchedule = (DampingSchedule)7 }.Validate());
        Assert.StartsWith("DampingSchedule must be Constant or LevenbergMarquardt (Parameter 'DampingSchedule')", e.Message);
        Assert.Equal("model", Assert.Throws<ArgumentNullException>(() => new NaturalGradientDescent(null!, new GaussianLikelihood())).ParamName);
        Assert.Equal("likelihood", Assert.Throws<ArgumentNullException>(() => new NaturalGradientDescent(Net(), null!)).ParamName);
        Assert.Equal("likelihood", Assert.Throws<ArgumentNullException>(() => new NaturalGradientPreconditioner(Net(), null!)).ParamName);
    }
}
