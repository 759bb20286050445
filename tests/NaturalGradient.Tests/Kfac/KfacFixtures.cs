using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Kfac;

/// <summary>Seeded float64 problems (MLP and a small conv net) and block configurations shared by the K-FAC tests.</summary>
public static class KfacFixtures
{
    /// <summary>Block configurations by name, for [MemberData] tables.</summary>
    public static readonly string[] Configurations = { "kfac-eigen-factored", "kfac-eigen-eigenbasis", "kfac-cholesky-factored", "ekfac" };

    public static ICurvatureBlock CreateBlock(string configuration, ILayerAdapter layer, KfacOptions? options = null)
    {
        options ??= new KfacOptions();
        return configuration switch
        {
            "kfac-eigen-factored" => new KfacBlock(layer, options with { InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Factored }),
            "kfac-eigen-eigenbasis" => new KfacBlock(layer, options with { InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Eigenbasis }),
            "kfac-cholesky-factored" => new KfacBlock(layer, options with { InverseMethod = KfacInverseMethod.Cholesky, DampingMode = KfacDampingMode.Factored }),
            "ekfac" => new EkfacBlock(layer, options with { DampingMode = KfacDampingMode.Eigenbasis }),
            _ => throw new ArgumentException(configuration),
        };
    }

    /// <summary>True when the configuration solves (B + λI) exactly (eigenbasis damping), so Precondition inverts Multiply + λ.</summary>
    public static bool DampsExactly(string configuration) => configuration is "kfac-eigen-eigenbasis" or "ekfac";

    /// <summary>Random class labels 0..classes−1 (int64, shape m).</summary>
    public static Tensor Labels(long m, long classes, long seed = 3)
    {
        manual_seed(seed);
        return randint(0, classes, new long[] { m }, dtype: ScalarType.Int64);
    }

    /// <summary>Runs one captured forward pass and collects every covered layer's statistics.</summary>
    public static (List<ILayerAdapter> Layers, IReadOnlyList<LayerStatistics> Statistics) Collect(
        Module<Tensor, Tensor> model, Tensor x, Tensor? y, ILikelihood likelihood, FisherKind kind = FisherKind.Empirical, int samples = 1)
    {
        using var capture = new LayerCapture(model);
        var output = model.call(x);
        var recorded = capture.Recorded();
        using var generator = new Generator(17);
        var statistics = new FisherEstimator(likelihood, kind, samples).Collect(capture, recorded, output, y, generator);
        return (recorded.Select(l => l.Adapter).ToList(), statistics);
    }

    /// <summary>
    /// A classifier MLP of <paramref name="sizes"/> (<see cref="TestModels.Mlp"/>) on m seeded inputs and labels: its
    /// layers, their empirical-Fisher statistics and the mean loss's gradient matrices (W̄-shaped, from a backward pass of its own).
    /// </summary>
    public static (List<ILayerAdapter> Layers, IReadOnlyList<LayerStatistics> Statistics, List<Tensor> Gradients) MlpProblem(
        int[] sizes, long m, long inputSeed, long labelSeed)
    {
        var model = TestModels.Mlp(sizes);
        var likelihood = new CategoricalLikelihood();
        var x = TestModels.Inputs(m, sizes[0], seed: inputSeed);
        var y = Labels(m, sizes[^1], seed: labelSeed);
        var (layers, statistics) = Collect(model, x, y, likelihood);
        model.zero_grad();
        likelihood.Loss(model.call(x), y).backward();
        return (layers, statistics, layers.Select(l => l.GradientMatrix()).ToList());
    }

    /// <summary>The layer's empirical-Fisher block (1/m) Σ gᵢgᵢᵀ from per-example gradients (m × out × in').</summary>
    public static Tensor EmpiricalBlock(Tensor perExample)
    {
        var j = perExample.reshape(perExample.shape[0], -1);
        return j.t().mm(j).div(j.shape[0]);
    }

    /// <summary>A random W̄-shaped matrix for the layer.</summary>
    public static Tensor RandomMatrix(ILayerAdapter layer, long seed)
    {
        var gen = new Generator((ulong)seed);
        return randn(new[] { layer.OutputDim, layer.InputDim }, dtype: ScalarType.Float64, generator: gen);
    }

    /// <summary>A small conv net: conv → tanh → flatten → linear (classes outputs), float64, seeded.</summary>
    public sealed record ConvNet(Conv2d Conv, Module<Tensor, Tensor> Head, Module<Tensor, Tensor> Model, ConvShape Shape);

    public sealed record ConvShape(long Channels, long OutChannels, long Kernel, long Stride, long Padding, long Dilation, bool Bias, long Height)
    {
        public long OutHeight => (Height + 2 * Padding - Dilation * (Kernel - 1) - 1) / Stride + 1;
        public long Positions => OutHeight * OutHeight;
        public override string ToString() => $"c{Channels}→{OutChannels} k{Kernel} s{Stride} p{Padding} d{Dilation} bias={Bias} h{Height}";
    }

    public static ConvNet CreateConvNet(ConvShape s, long classes = 3, long seed = 0)
    {
        manual_seed(seed);
        var conv = Conv2d(s.Channels, s.OutChannels, s.Kernel, stride: s.Stride, padding: s.Padding, dilation: s.Dilation, bias: s.Bias, dtype: ScalarType.Float64);
        var head = Sequential(("act", (Module<Tensor, Tensor>)Tanh()), ("flat", Flatten()),
            ("fc", Linear(s.OutChannels * s.Positions, classes, dtype: ScalarType.Float64)));
        var model = Sequential(("conv", (Module<Tensor, Tensor>)conv), ("head", head));
        return new ConvNet(conv, head, model, s);
    }

    public static Tensor Images(long m, ConvShape s, long seed = 1)
    {
        manual_seed(seed);
        return randn(new[] { m, s.Channels, s.Height, s.Height }, dtype: ScalarType.Float64);
    }

    /// <summary>
    /// MLP 30-40-3 (float64) on <paramref name="m"/> examples, categorical likelihood: its layers, their empirical-Fisher
    /// statistics and autograd's gradients of the mean loss. At m = 4 the mean-gradient route is cheaper for the 40 × 31
    /// layer, not for the 3 × 41 one.
    /// </summary>
    public static (List<ILayerAdapter> Layers, IReadOnlyList<LayerStatistics> Statistics, List<Tensor> Gradients) WideAndNarrowLayers(long m)
    {
        var model = TestModels.Mlp(new[] { 30, 40, 3 });
        var likelihood = new CategoricalLikelihood();
        var x = TestModels.Inputs(m, 30, seed: 4);
        var y = Labels(m, 3, seed: 5);
        var (layers, statistics) = Collect(model, x, y, likelihood);
        model.zero_grad();
        likelihood.Loss(model.call(x), y).backward();
        return (layers, statistics, layers.Select(l => l.GradientMatrix()).ToList());
    }

    /// <summary>The statistics with their activations and output gradients converted to float32.</summary>
    public static LayerStatistics Float32(LayerStatistics s) =>
        new(s.Adapter, s.Activations.to_type(ScalarType.Float32), s.OutputGradients.to_type(ScalarType.Float32), s.Weight);
}
