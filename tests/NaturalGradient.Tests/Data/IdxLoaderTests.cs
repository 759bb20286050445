using System.Buffers.Binary;
using NaturalGradient.Training.Data;
using NaturalGradient.Training.Data.Idx;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Data;

public class IdxLoaderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>An unsigned-byte IDX file: magic, big-endian dimensions, data.</summary>
    private static byte[] Idx(int magic, int[] dimensions, byte[] data)
    {
        var bytes = new byte[4 + 4 * dimensions.Length + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int k = 0; k < dimensions.Length; k++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * k), dimensions[k]);
        data.CopyTo(bytes, 4 + 4 * dimensions.Length);
        return bytes;
    }

    /// <summary>n images of h × w whose pixels are (7·item + pixel) mod 256; labels item mod 10.</summary>
    private static (byte[] Images, byte[] Labels) Items(int n, int h, int w, int offset = 0)
    {
        var images = new byte[n * h * w];
        for (int i = 0; i < n; i++)
            for (int p = 0; p < h * w; p++) images[i * h * w + p] = (byte)((7 * (i + offset) + p) % 256);
        var labels = Enumerable.Range(offset, n).Select(i => (byte)(i % 10)).ToArray();
        return (Idx(0x803, new[] { n, h, w }, images), Idx(0x801, new[] { n }, labels));
    }

    /// <summary>Writes the four standard files (gzipped) and returns the folder.</summary>
    private string WriteSet(int trainCount = 12, int testCount = 5, int h = 4, int w = 3,
        byte[]? trainImages = null, byte[]? trainLabels = null, byte[]? testImages = null, byte[]? testLabels = null)
    {
        var (ti, tl) = Items(trainCount, h, w);
        var (si, sl) = Items(testCount, h, w, offset: 100);
        _folder.WriteBytes("train-images-idx3-ubyte.gz", trainImages ?? ti, gzip: true);
        _folder.WriteBytes("train-labels-idx1-ubyte.gz", trainLabels ?? tl, gzip: true);
        _folder.WriteBytes("t10k-images-idx3-ubyte.gz", testImages ?? si, gzip: true);
        _folder.WriteBytes("t10k-labels-idx1-ubyte.gz", testLabels ?? sl, gzip: true);
        return _folder.Path;
    }

    private string FileIn(string name) => System.IO.Path.Combine(_folder.Path, name);

    private DataFormatException LoadFails(string directory) =>
        Assert.Throws<DataFormatException>(() => FashionMnist.Load(new DataOptions(), directory).Dispose());

    [Fact]
    public void SmallGzippedSet_LoadsAsScaledImagesAndLabels()
    {
        var dir = WriteSet();
        using var d = FashionMnist.Load(new DataOptions(), dir);
        using var scope = NewDisposeScope();
        Assert.Equal(TaskKind.Classification, d.Task);
        Assert.Equal(new long[] { 12, 1, 4, 3 }, d.TrainX.shape);
        Assert.Equal(new long[] { 5, 1, 4, 3 }, d.TestX.shape);
        Assert.Equal(ScalarType.Float32, d.TrainX.dtype);
        Assert.Equal(ScalarType.Int64, d.TrainY.dtype);
        Assert.Equal(FashionMnist.ClassNames, d.ClassNames);
        Assert.Equal(new long[] { 1, 4, 3 }, d.InputShape);

        var expectedPixel = (7 * 5 + 6) / 255f;
        Assert.Equal(expectedPixel, d.TrainX[5, 0, 2, 0].item<float>());
        Assert.Equal((7 * 103 % 256) / 255f, d.TestX[3, 0, 0, 0].item<float>());
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (long)(i % 10)), d.TrainY.data<long>().ToArray());
        Assert.True(d.TrainX.min().item<float>() >= 0 && d.TrainX.max().item<float>() <= 1);
    }

    [Fact]
    public void UncompressedFiles_AreReadToo()
    {
        var (ti, tl) = Items(3, 2, 2);
        _folder.WriteBytes("train-images-idx3-ubyte", ti, gzip: false);
        _folder.WriteBytes("train-labels-idx1-ubyte", tl, gzip: false);
        _folder.WriteBytes("t10k-images-idx3-ubyte", ti, gzip: false);
        _folder.WriteBytes("t10k-labels-idx1-ubyte", tl, gzip: false);
        using var d = DatasetCatalog.Load(_folder.Path, new DataOptions());
        Assert.Equal(new long[] { 3, 1, 2, 2 }, d.TrainX.shape);
        Assert.Equal(new[] { "0", "1", "2" }, d.ClassNames);
    }

    [Fact]
    public void MaxTrainExamples_KeepsASeededSubsetWithMatchingLabels()
    {
        var dir = WriteSet(trainCount: 40);
        using var a = FashionMnist.Load(new DataOptions { MaxTrainExamples = 6, Seed = 1 }, dir);
        using var b = FashionMnist.Load(new DataOptions { MaxTrainExamples = 6, Seed = 1 }, dir);
        using var c = FashionMnist.Load(new DataOptions { MaxTrainExamples = 6, Seed = 2 }, dir);
        using var scope = NewDisposeScope();
        Assert.Equal(6, a.TrainCount);
        Assert.Equal(5, a.TestCount);
        TensorAssert.Close(a.TrainX, b.TrainX, label: "same seed");
        Assert.NotEqual(a.TrainX.data<float>().ToArray(), c.TrainX.data<float>().ToArray());
        // pixel 0 of item i is 7i mod 256, label i mod 10: recover i from the pixel and check the label.
        var first = (a.TrainX[TensorIndex.Colon, 0, 0, 0] * 255).round().to_type(ScalarType.Int64).data<long>().ToArray();
        Assert.Equal(first.Select(p => p / 7 % 10), a.TrainY.data<long>().ToArray());
    }

    [Fact]
    public void MissingFiles_SayHowToInstallThePackage()
    {
        var e = LoadFails(FileIn("nowhere"));
        Assert.Equal($"fashion-mnist not found at {FileIn("nowhere")}: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)", e.Message);
    }

    [Fact]
    public void SwappedImagesAndLabels_ReportBadMagicNumber()
    {
        var (_, labels) = Items(12, 4, 3);
        var e = LoadFails(WriteSet(trainImages: labels));
        Assert.Contains(FileIn("train-images-idx3-ubyte.gz"), e.Message);
        Assert.Contains("bad magic number 0x00000801: expected 0x00000803", e.Message);
        Assert.Contains("images and labels may be swapped", e.Message);
    }

    [Fact]
    public void WrongDataType_ReportsBadMagicNumber()
    {
        var e = LoadFails(WriteSet(testLabels: Idx(0x0D01, new[] { 5 }, new byte[5])));
        Assert.Contains(FileIn("t10k-labels-idx1-ubyte.gz"), e.Message);
        Assert.Contains("bad magic number 0x00000D01", e.Message);
        Assert.Contains("data type 0x0D is not supported", e.Message);
    }

    [Fact]
    public void TruncatedData_SaysHowMuchIsMissing()
    {
        var (images, _) = Items(12, 4, 3);
        var e = LoadFails(WriteSet(trainImages: images[..^10]));
        Assert.Contains(FileIn("train-images-idx3-ubyte.gz"), e.Message);
        Assert.Contains("truncated: the header declares 12 × 4 × 3 = 144 bytes of images but only 134 follow", e.Message);
    }

    [Fact]
    public void TrailingData_IsReported()
    {
        var (_, labels) = Items(5, 4, 3, offset: 100);
        var e = LoadFails(WriteSet(testLabels: labels.Append((byte)1).ToArray()));
        Assert.Contains(FileIn("t10k-labels-idx1-ubyte.gz"), e.Message);
        Assert.Contains("trailing data", e.Message);
    }

    [Fact]
    public void LabelCountDifferentFromImageCount_NamesBothFiles()
    {
        var (_, labels) = Items(11, 4, 3);
        var e = LoadFails(WriteSet(trainLabels: labels));
        Assert.Equal($"{FileIn("train-labels-idx1-ubyte.gz")}: holds 11 labels but {FileIn("train-images-idx3-ubyte.gz")} holds 12 images", e.Message);
    }

    [Fact]
    public void TestImagesOfAnotherSize_AreReported()
    {
        var (images, _) = Items(5, 3, 3);
        var e = LoadFails(WriteSet(testImages: images));
        Assert.Contains(FileIn("t10k-images-idx3-ubyte.gz"), e.Message);
        Assert.Contains("images are 3 × 3 but the training images", e.Message);
    }

    [Fact]
    public void LabelOutsideTheClasses_IsReported()
    {
        var labels = Idx(0x801, new[] { 5 }, new byte[] { 1, 2, 10, 3, 4 });
        var e = LoadFails(WriteSet(testLabels: labels));
        Assert.Contains("label 10 of item 2 is outside 0…9", e.Message);
    }

    [Fact]
    public void CorruptGzip_IsReported()
    {
        var dir = WriteSet();
        var path = FileIn("train-labels-idx1-ubyte.gz");
        var bytes = File.ReadAllBytes(path);
        for (int i = 10; i < bytes.Length; i++) bytes[i] ^= 0x5A;
        File.WriteAllBytes(path, bytes);
        var e = LoadFails(dir);
        Assert.StartsWith(path + ": ", e.Message);
    }

    [Fact]
    public void FolderWithoutIdxFiles_ListsWhatIsMissing()
    {
        var e = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load(_folder.Path, new DataOptions()));
        Assert.Contains("missing train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte", e.Message);
    }
}
