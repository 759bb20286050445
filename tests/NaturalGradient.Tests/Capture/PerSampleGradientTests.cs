using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Capture;

[Collection("Torch")]
public class PerSampleGradientTests
{
    public static TheoryData<int[], string, bool, int> Cases => new()
    {
        { new[] { 3, 2 }, "tanh", true, 1 },
        { new[] { 4, 5, 3 }, "tanh", true, 7 },
        { new[] { 4, 5, 3 }, "relu", false, 5 },
        { new[] { 6, 8, 7, 2 }, "sigmoid", true, 16 },
        { new[] { 5, 3, 9, 4, 3 }, "tanh", false, 33 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void CapturedPerSampleGradients_EqualSingleExampleBackwardLoop(int[] sizes, string act, bool bias, int m)
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(sizes, act, bias);
        var x = TestModels.Inputs(m, sizes[0]);
        var y = TestModels.Inputs(m, sizes[^1], seed: 2);
        var lik = new GaussianLikelihood();
        using var capture = new LayerCapture(model);
        var layers = capture.Layers.Select(l => l.Adapter).ToList();

        var output = model.call(x);
        var recorded = capture.Recorded();
        Assert.Equal(sizes.Length - 1, recorded.Count);
        var stats = new FisherEstimator(lik).Collect(capture, recorded, output, y);
        lik.Loss(output, y).backward();
        var batchGrads = layers.Select(l => l.GradientMatrix()).ToList();
        capture.Enabled = false;

        var reference = BruteForce.PerExampleGradients(model, layers, x, lik.PerExampleLoss, y);
        for (int l = 0; l < layers.Count; l++)
        {
            var captured = stats[l].PerSampleGradients();
            TensorAssert.Close(reference[l], captured, rtol: 1e-10, label: $"layer {l}");
            TensorAssert.Close(batchGrads[l], captured.mean(new long[] { 0 }), rtol: 1e-10, label: $"mean of layer {l}");
        }
    }

    [Fact]
    public void CustomModuleCallingForward_IsReportedByName()
    {
        using var scope = NewDisposeScope();
        var model = new BypassingModel();
        using var capture = new LayerCapture(model);
        var x = TestModels.Inputs(4, 3);
        var output = model.call(x);
        var loss = output.square().sum();
        var ex = Assert.Throws<LayerNotObservedException>(() => capture.ThrowIfBypassed(loss));
        Assert.Equal("inner", ex.LayerName);
        Assert.Contains("inner.call(x)", ex.Message);
        Assert.Single(capture.Recorded());
    }

    [Fact]
    public void DisabledCapture_RecordsNothing()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 3, 4, 2 });
        using var capture = new LayerCapture(model) { Enabled = false };
        model.call(TestModels.Inputs(5, 3));
        Assert.Empty(capture.Recorded());
    }

    private sealed class BypassingModel : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear inner, outer;
        public BypassingModel() : base("bypass")
        {
            manual_seed(0);
            inner = nn.Linear(3, 4, dtype: ScalarType.Float64);
            outer = nn.Linear(4, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => outer.call(tanh(inner.forward(x)));
    }
}
