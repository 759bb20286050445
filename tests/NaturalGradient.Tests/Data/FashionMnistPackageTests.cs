using NaturalGradient.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Data;

/// <summary>Reads the real Fashion-MNIST files of the Debian package dataset-fashion-mnist.</summary>
public class FashionMnistPackageTests
{
    [RequiresFashionMnistFact]
    public void PackageFiles_Load_As60kTrainAnd10kTestImages()
    {
        using var d = DatasetCatalog.Load("fashion-mnist", new DataOptions { MaxTrainExamples = 500 });
        using var scope = NewDisposeScope();
        Assert.Equal(new long[] { 500, 1, 28, 28 }, d.TrainX.shape);
        Assert.Equal(new long[] { 10000, 1, 28, 28 }, d.TestX.shape);
        Assert.Equal(10, d.OutputCount);
        Assert.Equal("T-shirt/top", d.ClassNames![0]);
        Assert.Equal("Ankle boot", d.ClassNames[9]);
        Assert.Equal(Enumerable.Repeat(1000L, 10), d.TestY.bincount(null).data<long>().ToArray());
        Assert.Equal(0f, d.TestX.min().item<float>());
        Assert.Equal(1f, d.TestX.max().item<float>());
        Assert.Contains("Zalando", d.Provenance);
    }
}
