using NaturalGradient.Curvature;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Engine;

[Collection("Torch")]
public class TengradMemoryTests
{
    [Fact]
    public void Tengrad_OnAWideLayer_NeverAllocatesTheBatchTimesParametersJacobian()
    {
        Assert.True(PeakMemory.Available, "needs Linux /proc to measure peak memory");
        using var scope = NewDisposeScope();
        const int width = 3000, m = 64;
        manual_seed(0);
        var model = nn.Sequential(("wide", nn.Linear(width, width)), ("act", nn.Tanh()), ("head", nn.Linear(width, 1)));
        var x = randn(m, width);
        var y = randn(m, 1);
        using var pre = new NaturalGradientPreconditioner(model, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Damping = 1e-2 });
        long jacobianBytes = (long)m * (width + 1) * width * sizeof(float);     // 2.3 GB

        pre.Backward(model.call(x), y);
        GC.Collect();
        long before = PeakMemory.ResidentBytes();
        PeakMemory.Reset();
        var report = pre.Precondition();
        long growth = PeakMemory.PeakBytes() - before;

        Assert.True(report.Applied);
        Assert.True(model.parameters().All(p => p.grad!.isfinite().all().item<bool>()));
        // A handful of p-sized tensors (36 MB each) is expected; an m × p Jacobian would be 2.3 GB.
        Assert.True(growth < jacobianBytes / 4, $"peak grew by {growth / 1e6:F0} MB during the TENGraD solve (m × p Jacobian = {jacobianBytes / 1e6:F0} MB)");
    }
}
