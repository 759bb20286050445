using NaturalGradient.Capture;
using NaturalGradient.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Models;

[Collection("Torch")]
public class ModelFactoryTests
{
    [Fact]
    public void Mlp_HiddenLayers_GiveNamedLayersAndOutputShape()
    {
        using var scope = NewDisposeScope();
        using var model = ModelFactory.Mlp(new long[] { 5 }, 3, new[] { 4, 2 }, Activation.Tanh, ScalarType.Float64);
        var names = model.named_children().Select(c => c.name).ToArray();
        Assert.Equal(new[] { "fc0", "act0", "fc1", "act1", "fc2" }, names);
        var output = model.call(randn(7, 5, dtype: ScalarType.Float64));
        Assert.Equal(new long[] { 7, 3 }, output.shape);
        Assert.Equal(5 * 4 + 4 + 4 * 2 + 2 + 2 * 3 + 3, ModelFactory.ParameterCount(model));
    }

    [Fact]
    public void Mlp_EmptyHidden_IsOneLinearLayer()
    {
        using var model = ModelFactory.Mlp(new long[] { 4 }, 2, Array.Empty<int>(), Activation.Relu, ScalarType.Float32);
        Assert.Single(model.named_children());
        Assert.IsType<Linear>(model.named_children().Single().module);
    }

    [Fact]
    public void Mlp_ImageInput_FlattensFirst()
    {
        using var scope = NewDisposeScope();
        using var model = ModelFactory.Mlp(new long[] { 1, 4, 4 }, 3, new[] { 6 }, Activation.Sigmoid, ScalarType.Float32);
        Assert.Equal("flatten", model.named_children().First().name);
        Assert.Equal(new long[] { 2, 3 }, model.call(randn(2, 1, 4, 4)).shape);
    }

    [Fact]
    public void ConvNet_ImageInput_GivesOutputsPerExample()
    {
        using var scope = NewDisposeScope();
        using var model = ModelFactory.ConvNet(new long[] { 2, 9, 10 }, 5, ScalarType.Float32);
        Assert.Equal(new long[] { 3, 5 }, model.call(randn(3, 2, 9, 10)).shape);
        var convs = model.modules().OfType<Conv2d>().ToList();
        Assert.Equal(2, convs.Count);
    }

    [Fact]
    public void Build_ConvOnFlatInput_NamesKindAndShape()
    {
        var spec = new ModelSpec { Kind = ModelKind.Conv };
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => ModelFactory.Build(spec, new long[] { 13 }, 1, ScalarType.Float32));
        Assert.Equal(nameof(ModelSpec.Kind), ex.ParamName);
        Assert.Contains("[13]", ex.Message);
    }

    public static TheoryData<string> Kinds => new() { "mlp", "conv" };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void LayerCapture_RecordsEveryLinearAndConvLayer(string kind)
    {
        using var scope = NewDisposeScope();
        manual_seed(0);
        using var model = kind == "mlp"
            ? ModelFactory.Mlp(new long[] { 1, 8, 8 }, 3, new[] { 5, 4 }, Activation.Tanh, ScalarType.Float64)
            : ModelFactory.ConvNet(new long[] { 1, 8, 8 }, 3, ScalarType.Float64);
        int expected = model.modules().Count(m => m is Linear or Conv2d);
        using var capture = new LayerCapture(model);
        Assert.Equal(expected, capture.Layers.Count);
        var output = model.call(randn(4, 1, 8, 8, dtype: ScalarType.Float64));
        Assert.Equal(expected, capture.Recorded().Count);
        capture.ThrowIfBypassed(output.sum());
    }

    [Theory]
    [InlineData("32,16", new[] { 32, 16 })]
    [InlineData(" 8 , 4 ,2", new[] { 8, 4, 2 })]
    [InlineData("7", new[] { 7 })]
    [InlineData("", new int[0])]
    [InlineData("none", new int[0])]
    public void ParseHidden_ValidLists(string text, int[] expected) =>
        Assert.Equal(expected, ModelSpecParser.ParseHidden(text));

    [Theory]
    [InlineData("32,x")]
    [InlineData("0")]
    [InlineData("-4")]
    [InlineData("3,,4")]
    [InlineData("2.5")]
    public void ParseHidden_InvalidLists_SayWhatIsExpected(string text)
    {
        var ex = Assert.Throws<FormatException>(() => ModelSpecParser.ParseHidden(text));
        Assert.Equal($"'{text}' is not a list of positive integers", ex.Message);
    }

    [Fact]
    public void ParseActivation_Unknown_ListsChoices()
    {
        Assert.Equal(Activation.Relu, ModelSpecParser.ParseActivation("ReLU"));
        var ex = Assert.Throws<FormatException>(() => ModelSpecParser.ParseActivation("gelu"));
        Assert.Equal("'gelu' is not one of tanh, relu, sigmoid", ex.Message);
    }
}
