using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// (g) Native memory: a block owns a fixed set of long-lived tensors, replaces (and disposes) them on refresh, and
/// frees them all in Dispose; everything else it creates lives in the caller's dispose scope.
/// </summary>
[Collection("Torch")]
public class KfacMemoryTests
{
    [Theory]
    [InlineData("kfac-eigen-factored", "linear")]
    [InlineData("kfac-eigen-eigenbasis", "linear")]
    [InlineData("kfac-cholesky-factored", "linear")]
    [InlineData("ekfac", "linear")]
    [InlineData("kfac-cholesky-factored", "conv")]
    [InlineData("ekfac", "conv")]
    public void ManyCycles_KeepTheLiveTensorCountFlat_AndDisposeFreesEverything(string configuration, string kind)
    {
        using var outer = NewDisposeScope();
        var likelihood = new CategoricalLikelihood();
        var (layers, statistics) = kind == "linear"
            ? Collect(TestModels.Mlp(new[] { 4, 5, 3 }), TestModels.Inputs(6, 4), Labels(6, 3), likelihood)
            : Collect(CreateConvNet(new ConvShape(2, 3, 2, 1, 0, 1, true, 4)).Model,
                      Images(3, new ConvShape(2, 3, 2, 1, 0, 1, true, 4)), Labels(3, 3), likelihood);
        var layer = layers[0];
        var gradient = RandomMatrix(layer, 1);

        long start = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var block = CreateBlock(configuration, layer, new Curvature.Kfac.KfacOptions { FactorUpdatePeriod = 2, InverseUpdatePeriod = 3 });
        long? owned = null;
        for (long step = 0; step < 30; step++)
        {
            using (NewDisposeScope())
            {
                block.Update(statistics[0], step);
                double damping = step % 4 == 0 ? 0.1 : 0.01;                       // Cholesky refactorises on every change
                var delta = block.Precondition(gradient, damping);
                var product = block.Multiply(delta);
                Assert.True(product.isfinite().all().item<bool>());
            }
            long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount - start;
            owned ??= live;
            Assert.True(live == owned, $"step {step}: {live} live tensors owned by the block, {owned} after step 0");
        }
        Assert.InRange(owned!.Value, 2, 8);
        block.Dispose();
        Assert.Equal(start, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        block.Dispose();                                                           // idempotent
        Assert.Throws<ObjectDisposedException>(() => block.Precondition(gradient, 0.1));
    }
}
