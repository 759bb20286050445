using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// (f) The ICurvatureBlock contract for every K-FAC / EKFAC configuration on Linear and Conv2d layers: ToDense agrees
/// with Multiply, is symmetric PSD, the same input gives the same output, and Precondition inverts B + λI where the
/// damping is exact (eigenbasis damping and EKFAC).
/// </summary>
[Collection("Torch")]
public class KfacContractTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var configuration in Configurations)
            foreach (var layer in new[] { "linear", "conv" })
                data.Add(configuration, layer);
        return data;
    }

    /// <summary>The conv net's conv layer or the MLP's hidden layer, with statistics from two running-average updates.</summary>
    private static (ILayerAdapter Layer, LayerStatistics First, LayerStatistics Second) Layer(string kind)
    {
        var likelihood = new CategoricalLikelihood();
        if (kind == "linear")
        {
            var model = TestModels.Mlp(new[] { 5, 4, 3 });
            var (layers, first) = Collect(model, TestModels.Inputs(7, 5, seed: 1), Labels(7, 3), likelihood);
            var (_, second) = Collect(model, TestModels.Inputs(7, 5, seed: 2), null, likelihood, FisherKind.MonteCarlo, 2);
            return (layers[0], first[0], second[0]);
        }
        var shape = new ConvShape(2, 3, 2, 1, 0, 1, true, 4);
        var net = CreateConvNet(shape);
        var (convLayers, convFirst) = Collect(net.Model, Images(3, shape, seed: 1), Labels(3, 3), likelihood);
        var (_, convSecond) = Collect(net.Model, Images(3, shape, seed: 2), null, likelihood, FisherKind.Exact);
        return (convLayers[0], convFirst[0], convSecond[0]);
    }

    private static (Curvature.ICurvatureBlock Block, long Out, long In) Block(string configuration, string kind)
    {
        var (layer, first, second) = Layer(kind);
        var block = CreateBlock(configuration, layer, new KfacOptions { FactorDecay = 0.8, InverseUpdatePeriod = 1 });
        block.Update(first, 0);
        block.Update(second, 1);
        return (block, layer.OutputDim, layer.InputDim);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ToDense_AgreesWithMultiply(string configuration, string kind)
    {
        using var scope = NewDisposeScope();
        var (block, o, i) = Block(configuration, kind);
        using var _ = block;
        var dense = block.ToDense();
        for (int seed = 0; seed < 3; seed++)
        {
            var v = Random(o, i, seed);
            TensorAssert.Close(dense.mv(v.reshape(-1)), block.Multiply(v).reshape(-1), rtol: 1e-12, label: $"seed {seed}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ToDense_IsSymmetricPositiveSemidefinite(string configuration, string kind)
    {
        using var scope = NewDisposeScope();
        var (block, _, _) = Block(configuration, kind);
        using var _ = block;
        var dense = block.ToDense();
        TensorAssert.Close(dense.t(), dense, rtol: 1e-13, label: "symmetry");
        double smallest = linalg.eigvalsh(dense).min().item<double>();
        double largest = linalg.eigvalsh(dense).max().item<double>();
        Assert.True(smallest >= -1e-12 * largest, $"smallest eigenvalue {smallest:E3} (largest {largest:E3})");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SameInputTwice_GivesTheSameResult(string configuration, string kind)
    {
        using var scope = NewDisposeScope();
        var (block, o, i) = Block(configuration, kind);
        using var _ = block;
        var v = Random(o, i, 9);
        TensorAssert.Close(block.Multiply(v), block.Multiply(v), rtol: 0, label: "Multiply");
        TensorAssert.Close(block.Precondition(v, 0.01), block.Precondition(v, 0.01), rtol: 0, label: "Precondition");
        TensorAssert.Close(v, v.clone(), rtol: 0, label: "input untouched");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Precondition_InvertsTheDampedBlock(string configuration, string kind)
    {
        using var scope = NewDisposeScope();
        var (block, o, i) = Block(configuration, kind);
        using var _ = block;
        var v = Random(o, i, 11);
        foreach (double damping in new[] { 1.0, 1e-2, 1e-4 })
        {
            // Eigenbasis damping and EKFAC solve (B + λI) Δ = g; factored damping solves (G + √λ/π I) ⊗ (A + π√λ I).
            var rhs = DampsExactly(configuration) ? block.Multiply(v) + damping * v : FactoredDampedMultiply((KfacBlock)block, v, damping);
            TensorAssert.Close(v, block.Precondition(rhs, damping), rtol: 1e-8, label: $"λ = {damping}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Float32Gradient_IsPreconditionedInItsOwnDtype(string configuration, string kind)
    {
        using var scope = NewDisposeScope();
        var (block, o, i) = Block(configuration, kind);
        using var _ = block;
        var v = Random(o, i, 12);
        var single = block.Precondition(v.to_type(ScalarType.Float32), 0.1);
        Assert.Equal(ScalarType.Float32, single.dtype);
        TensorAssert.Close(block.Precondition(v, 0.1), single, rtol: 1e-5, label: "float32 gradient");
    }

    private static Tensor Random(long o, long i, int seed)
    {
        using var generator = new Generator((ulong)seed);
        return randn(new[] { o, i }, dtype: ScalarType.Float64, generator: generator);
    }

    /// <summary>(G + √λ/π I) V (A + π√λ I) from the block's own factors, π² = (tr A / dim A) / (tr G / dim G).</summary>
    private static Tensor FactoredDampedMultiply(KfacBlock block, Tensor v, double damping)
    {
        var a = block.ActivationFactor;
        var g = block.OutputGradientFactor;
        double pi = Math.Sqrt((a.trace().item<double>() / a.shape[0]) / (g.trace().item<double>() / g.shape[0]));
        var dampedG = g + Math.Sqrt(damping) / pi * eye(g.shape[0], dtype: g.dtype);
        var dampedA = a + pi * Math.Sqrt(damping) * eye(a.shape[0], dtype: a.dtype);
        return dampedG.mm(v).mm(dampedA);
    }
}
