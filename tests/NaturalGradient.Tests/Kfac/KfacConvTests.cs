using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Likelihoods;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// (c) Conv2d (KFC, Grosse &amp; Martens 2016): the factors equal A = (1/m) Σᵢ Σₜ pᵢₜpᵢₜᵀ over explicit patches and
/// G = (1/(m T)) Σᵢ Σₜ δᵢₜδᵢₜᵀ over per-example output gradients; the captured per-sample gradients equal a
/// per-example backward loop; with one output position (T = 1) everything equals the equivalent Linear layer.
/// </summary>
[Collection("Torch")]
public class KfacConvTests
{
    private const int M = 3;

    public static TheoryData<long, long, long, long, long, long, bool, long> Shapes => new()
    {
        // channels, out channels, kernel, stride, padding, dilation, bias, height
        { 2, 3, 3, 1, 1, 1, true, 5 },
        { 2, 3, 3, 2, 1, 1, true, 6 },
        { 3, 2, 2, 1, 0, 2, false, 5 },
    };

    /// <summary>Patches p (m × T × in') by nested loops over examples, output positions, channels and kernel offsets.</summary>
    private static Tensor BruteForcePatches(Tensor x, ConvShape s)
    {
        var data = x.contiguous().data<double>().ToArray();
        long oh = s.OutHeight, t = s.Positions, k = s.Kernel, c = s.Channels, h = s.Height;
        long inDim = c * k * k + (s.Bias ? 1 : 0);
        var p = new double[M * t * inDim];
        for (long i = 0; i < M; i++)
        for (long r = 0; r < oh; r++)
        for (long q = 0; q < oh; q++)
        {
            long row = (i * t + r * oh + q) * inDim;
            for (long ch = 0; ch < c; ch++)
            for (long kh = 0; kh < k; kh++)
            for (long kw = 0; kw < k; kw++)
            {
                long ih = r * s.Stride - s.Padding + kh * s.Dilation, iw = q * s.Stride - s.Padding + kw * s.Dilation;
                bool inside = ih >= 0 && ih < h && iw >= 0 && iw < h;
                p[row + (ch * k + kh) * k + kw] = inside ? data[((i * c + ch) * h + ih) * h + iw] : 0.0;
            }
            if (s.Bias) p[row + inDim - 1] = 1.0;
        }
        return tensor(p, new[] { (long)M, t, inDim }, dtype: ScalarType.Float64);
    }

    /// <summary>δᵢₜ = ∂ℓᵢ/∂(conv output at t) by one backward pass per example: m × T × out.</summary>
    private static Tensor BruteForceOutputGradients(ConvNet net, Tensor x, Tensor y, ILikelihood likelihood)
    {
        var rows = new List<Tensor>();
        for (long i = 0; i < M; i++)
        {
            var h = net.Conv.call(x.narrow(0, i, 1));
            var loss = likelihood.PerExampleLoss(net.Head.call(h), y.narrow(0, i, 1)).sum();
            var delta = torch.autograd.grad(new[] { loss }, new[] { h })[0];
            rows.Add(delta.reshape(net.Shape.OutChannels, -1).t());
        }
        return stack(rows.ToArray());
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Conv2d_Factors_EqualBruteForcePatchesAndPerExampleOutputGradients(long c, long o, long k, long s, long p, long d, bool bias, long h)
    {
        using var scope = NewDisposeScope();
        var shape = new ConvShape(c, o, k, s, p, d, bias, h);
        var net = CreateConvNet(shape);
        var x = Images(M, shape);
        var y = Labels(M, 3);
        var likelihood = new CategoricalLikelihood();
        var (layers, statistics) = Collect(net.Model, x, y, likelihood);
        Assert.Equal("Conv2d", layers[0].KindName);

        var patches = BruteForcePatches(x, shape);
        TensorAssert.Close(patches, statistics[0].Activations, rtol: 1e-14, label: "patches");
        var flatPatches = patches.reshape(-1, patches.shape[2]);
        var a = flatPatches.t().mm(flatPatches).div(M);
        var delta = BruteForceOutputGradients(net, x, y, likelihood).reshape(-1, o);
        var g = delta.t().mm(delta).div(M * shape.Positions);

        foreach (var configuration in new[] { "kfac-eigen-factored", "ekfac" })
        {
            using var block = CreateBlock(configuration, layers[0]);
            block.Update(statistics[0], 0);
            var (blockA, blockG) = block is KfacBlock kfac ? (kfac.ActivationFactor, kfac.OutputGradientFactor)
                : (((EkfacBlock)block).ActivationFactor, ((EkfacBlock)block).OutputGradientFactor);
            TensorAssert.Close(a, blockA, rtol: 1e-12, label: $"{configuration} A");
            TensorAssert.Close(g, blockG, rtol: 1e-10, label: $"{configuration} G");
        }
        using var kfacBlock = new KfacBlock(layers[0]);
        kfacBlock.Update(statistics[0], 0);
        TensorAssert.Close(kron(g, a), kfacBlock.ToDense(), rtol: 1e-10, label: "G ⊗ A");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Conv2d_CapturedPerSampleGradients_EqualPerExampleBackwardLoop(long c, long o, long k, long s, long p, long d, bool bias, long h)
    {
        using var scope = NewDisposeScope();
        var shape = new ConvShape(c, o, k, s, p, d, bias, h);
        var net = CreateConvNet(shape);
        var x = Images(M, shape);
        var y = Labels(M, 3);
        var likelihood = new CategoricalLikelihood();
        var (layers, statistics) = Collect(net.Model, x, y, likelihood);
        var reference = BruteForce.PerExampleGradients(net.Model, layers, x, likelihood.PerExampleLoss, y);
        for (int l = 0; l < layers.Count; l++)
            TensorAssert.Close(reference[l], statistics[l].PerSampleGradients(), rtol: 1e-10, label: $"layer {l} ({layers[l].KindName})");
    }

    [Theory]
    [InlineData("kfac-eigen-factored")]
    [InlineData("kfac-cholesky-factored")]
    [InlineData("kfac-eigen-eigenbasis")]
    [InlineData("ekfac")]
    public void Conv2d_SinglePosition_ReducesToTheEquivalentLinearLayer(string configuration)
    {
        using var scope = NewDisposeScope();
        var shape = new ConvShape(2, 3, 3, 1, 0, 1, true, 3);                          // T = 1
        var net = CreateConvNet(shape, classes: 3);
        var linear = nn.Linear(2 * 3 * 3, 3, dtype: ScalarType.Float64);
        using (no_grad())
        {
            linear.weight!.copy_(net.Conv.weight!.reshape(3, -1));
            linear.bias!.copy_(net.Conv.bias!);
        }
        var linearModel = nn.Sequential(("fc", (nn.Module<Tensor, Tensor>)linear), ("head", net.Head));
        var x = Images(M, shape);
        var y = Labels(M, 3);
        var likelihood = new CategoricalLikelihood();
        var (convLayers, convStatistics) = Collect(net.Model, x, y, likelihood);
        var (linearLayers, linearStatistics) = Collect(linearModel, x.reshape(M, -1), y, likelihood);

        using var convBlock = CreateBlock(configuration, convLayers[0]);
        using var linearBlock = CreateBlock(configuration, linearLayers[0]);
        convBlock.Update(convStatistics[0], 0);
        linearBlock.Update(linearStatistics[0], 0);
        TensorAssert.Close(linearBlock.ToDense(), convBlock.ToDense(), rtol: 1e-12, label: "block");
        var v = RandomMatrix(convLayers[0], 5);
        TensorAssert.Close(linearBlock.Precondition(v, 0.01), convBlock.Precondition(v, 0.01), rtol: 1e-10, label: "preconditioned");
    }
}
