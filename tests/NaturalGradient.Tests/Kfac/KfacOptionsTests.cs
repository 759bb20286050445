using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>Option validation and argument checks of the K-FAC blocks, before any tensor work.</summary>
[Collection("Torch")]
public class KfacOptionsTests
{
    [Fact]
    public void Defaults_AreTheDocumentedValues()
    {
        var options = new KfacOptions();
        Assert.Equal(0.95, options.FactorDecay);
        Assert.Equal(3, options.FactorUpdatePeriod);
        Assert.Null(options.InverseUpdatePeriod);   // each block's own: K-FAC 10, EKFAC 20
        Assert.Equal(10, KfacOptions.DefaultInverseUpdatePeriod);
        Assert.Equal(20, KfacOptions.DefaultEigenbasisUpdatePeriod);
        Assert.Equal(KfacInverseMethod.Cholesky, options.InverseMethod);
        Assert.Equal(KfacDampingMode.Factored, options.DampingMode);
        Assert.Equal(KfacWeightSharing.Expand, options.WeightSharing);
        Assert.Same(options, options.Validate());
        Assert.Equal("KfacOptions { DampingMode = Factored, FactorDecay = 0.95, FactorUpdatePeriod = 3, InverseMethod = Cholesky, InverseUpdatePeriod = default, WeightSharing = Expand }",
            options.ToString());
    }

    public static TheoryData<KfacOptions, string> Invalid => new()
    {
        { new KfacOptions { FactorDecay = 1.0 }, nameof(KfacOptions.FactorDecay) },
        { new KfacOptions { FactorDecay = -0.1 }, nameof(KfacOptions.FactorDecay) },
        { new KfacOptions { FactorDecay = double.NaN }, nameof(KfacOptions.FactorDecay) },
        { new KfacOptions { FactorUpdatePeriod = 0 }, nameof(KfacOptions.FactorUpdatePeriod) },
        { new KfacOptions { InverseUpdatePeriod = -3 }, nameof(KfacOptions.InverseUpdatePeriod) },
        { new KfacOptions { InverseMethod = (KfacInverseMethod)7 }, nameof(KfacOptions.InverseMethod) },
        { new KfacOptions { InverseMethod = KfacInverseMethod.Cholesky, DampingMode = KfacDampingMode.Eigenbasis }, nameof(KfacOptions.DampingMode) },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Validate_RejectsOutOfRangeValues(KfacOptions options, string parameter)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => options.Validate());
        Assert.Equal(parameter, ex.ParamName);
    }

    [Fact]
    public void Blocks_ValidateTheirArguments()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics) = Collect(TestModels.Mlp(new[] { 4, 6, 3 }), TestModels.Inputs(3, 4), Labels(3, 3), new CategoricalLikelihood());
        var layer = layers[0];
        Assert.Throws<ArgumentOutOfRangeException>(() => new KfacBlock(layer, new KfacOptions { InverseMethod = KfacInverseMethod.Cholesky, DampingMode = KfacDampingMode.Eigenbasis }));
        foreach (var configuration in Configurations)
        {
            using var block = CreateBlock(configuration, layer);
            var ok = RandomMatrix(layer, 1);
            Assert.Throws<InvalidOperationException>(() => block.Precondition(ok, 0.1));      // no statistics yet
            Assert.Throws<InvalidOperationException>(() => block.ToDense());
            Assert.Throws<ArgumentException>(() => block.Update(statistics[1], 0));           // another layer's statistics
            Assert.Throws<ArgumentOutOfRangeException>(() => block.Update(statistics[0], -1));
            block.Update(statistics[0], 0);
            Assert.Throws<ArgumentException>(() => block.Precondition(ok.t(), 0.1));
            Assert.Throws<ArgumentException>(() => block.Multiply(ok.reshape(-1)));
            Assert.Throws<ArgumentOutOfRangeException>(() => block.Precondition(ok, 0));
            Assert.Throws<ArgumentOutOfRangeException>(() => block.Precondition(ok, double.NaN));
        }
    }
}
