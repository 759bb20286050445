using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests;

/// <summary>Closeness checks that say where and by how much two tensors differ.</summary>
public static class TensorAssert
{
    /// <summary>Asserts ‖actual − expected‖∞ ≤ atol + rtol · ‖expected‖∞ (a norm-wise relative error).</summary>
    public static void Close(Tensor expected, Tensor actual, double rtol = 1e-10, double atol = 0, string label = "")
    {
        Assert.Equal(expected.shape, actual.shape);
        using var _ = no_grad();
        var e = expected.to_type(ScalarType.Float64);
        var a = actual.to_type(ScalarType.Float64);
        double scale = e.abs().max().item<double>();
        var diff = (a - e).abs();
        double err = diff.max().item<double>();
        if (!(err <= atol + rtol * scale))
        {
            long worst = diff.flatten().argmax().item<long>();
            Assert.Fail($"{label}: max |Δ| = {err:E3} > {atol:E1} + {rtol:E1}·{scale:E3} (relative {err / Math.Max(scale, 1e-300):E3}); " +
                        $"worst flat index {worst}: expected {e.flatten()[worst].item<double>():G10}, actual {a.flatten()[worst].item<double>():G10}");
        }
    }

    public static double RelativeError(Tensor expected, Tensor actual)
    {
        using var _ = no_grad();
        return (actual - expected).norm().item<double>() / Math.Max(expected.norm().item<double>(), 1e-300);
    }
}
