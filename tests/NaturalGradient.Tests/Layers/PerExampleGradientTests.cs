using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>For every layer kind and graph shape: captured per-example gradients equal a loop of single-example backward passes.</summary>
[Collection("Torch")]
public class PerExampleGradientTests
{
    public static TheoryData<string> Cases => LayerCases.All();

    [Theory]
    [MemberData(nameof(Cases))]
    public void CapturedPerExampleGradients_EqualSingleExampleBackwardLoop(string name)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var capture = new LayerCapture(c.Model);
        var layers = capture.Layers.Select(l => l.Adapter).ToList();
        Assert.NotEmpty(layers);

        var output = c.Model.call(c.X);
        var stats = new FisherEstimator(c.Likelihood).Collect(capture, capture.Recorded(), output, c.Y);
        c.Likelihood.Loss(output, c.Y).backward();
        var batchGrads = layers.Select(l => l.GradientMatrix()).ToList();
        capture.Enabled = false;

        var reference = BruteForce.PerExampleGradients(c.Model, layers, c.X, c.Likelihood.PerExampleLoss, c.Y);
        for (int l = 0; l < layers.Count; l++)
        {
            var captured = stats[l].PerSampleGradients();
            TensorAssert.Close(reference[l], captured, rtol: 1e-10, label: $"{name}: layer {layers[l].Name} ({layers[l].KindName})");
            TensorAssert.Close(batchGrads[l], captured.mean(new long[] { 0 }), rtol: 1e-10, label: $"{name}: mean of {layers[l].Name}");
        }
    }
}
