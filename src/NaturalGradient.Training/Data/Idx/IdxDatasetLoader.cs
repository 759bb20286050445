using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Data.Idx;

/// <summary>
/// Loads an MNIST-style image classification set from IDX files: images become float32 tensors m × 1 × h × w
/// scaled to [0, 1] (not standardised), labels int64 class indices. The train/test split is the files' own;
/// <see cref="DataOptions.MaxTrainExamples"/> keeps a seeded random subset of the training images
/// (<see cref="DataOptions.Seed"/>), in file order.
/// </summary>
public static class IdxDatasetLoader
{
    /// <summary>Loads the four files.</summary>
    /// <param name="files">Training and test images and labels.</param>
    /// <param name="name">Dataset name.</param>
    /// <param name="classNames">Class names by label value; null = "0", "1", … up to the largest label.</param>
    /// <param name="options">Only <see cref="DataOptions.MaxTrainExamples"/> and <see cref="DataOptions.Seed"/> apply.</param>
    /// <param name="provenance">One line saying where the data came from.</param>
    /// <exception cref="DataFormatException">A file is missing or malformed, or the files disagree.</exception>
    public static Dataset Load(IdxFileSet files, string name, IReadOnlyList<string>? classNames, DataOptions options, string? provenance)
    {
        var trainImages = IdxFile.Read(files.TrainImages, 3, "images");
        var trainLabels = IdxFile.Read(files.TrainLabels, 1, "labels");
        var testImages = IdxFile.Read(files.TestImages, 3, "images");
        var testLabels = IdxFile.Read(files.TestLabels, 1, "labels");
        CheckPair(trainImages, trainLabels);
        CheckPair(testImages, testLabels);
        if (testImages.Dimensions[1] != trainImages.Dimensions[1] || testImages.Dimensions[2] != trainImages.Dimensions[2])
            throw new DataFormatException(testImages.Path, null, null, null,
                $"images are {testImages.Dimensions[1]} × {testImages.Dimensions[2]} but the training images ({trainImages.Path}) are {trainImages.Dimensions[1]} × {trainImages.Dimensions[2]}");

        int classCount = classNames?.Count ?? Math.Max(MaxLabel(trainLabels), MaxLabel(testLabels)) + 1;
        CheckLabels(trainLabels, classCount, classNames is not null);
        CheckLabels(testLabels, classCount, classNames is not null);
        var names = classNames ?? Enumerable.Range(0, classCount).Select(c => c.ToString()).ToArray();

        var kept = KeptTrainingItems(trainImages.Count, options);
        var trainX = Images(trainImages, kept);
        var trainY = Labels(trainLabels, kept);
        var testX = Images(testImages, null);
        var testY = Labels(testLabels, null);
        return new Dataset(name, TaskKind.Classification, trainX, trainY, testX, testY, names, provenance);
    }

    private static void CheckPair(IdxFile images, IdxFile labels)
    {
        if (images.Count != labels.Count)
            throw new DataFormatException(labels.Path, null, null, null,
                $"holds {labels.Count} labels but {images.Path} holds {images.Count} images");
    }

    private static int MaxLabel(IdxFile labels) => labels.Data.Max();

    private static void CheckLabels(IdxFile labels, int classCount, bool namedClasses)
    {
        for (int i = 0; i < labels.Data.Length; i++)
            if (labels.Data[i] >= classCount)
                throw new DataFormatException(labels.Path, null, null, null,
                    $"label {labels.Data[i]} of item {i} is outside 0…{classCount - 1}{(namedClasses ? $" ({classCount} named classes)" : "")}");
    }

    /// <summary>Indices of the training items to keep (sorted), or null for all.</summary>
    private static int[]? KeptTrainingItems(int count, DataOptions options)
    {
        if (options.MaxTrainExamples is not { } max || max >= count) return null;
        if (max < 1) throw new ArgumentOutOfRangeException(nameof(options), max, "MaxTrainExamples must be ≥ 1");
        var kept = TrainTestSplit.Permutation(count, options.Seed)[..max];
        Array.Sort(kept);
        return kept;
    }

    private static Tensor Images(IdxFile images, int[]? kept)
    {
        int h = images.Dimensions[1], w = images.Dimensions[2], size = h * w;
        byte[] bytes = images.Data;
        if (kept is not null)
        {
            bytes = new byte[kept.Length * size];
            for (int i = 0; i < kept.Length; i++) Array.Copy(images.Data, (long)kept[i] * size, bytes, (long)i * size, size);
        }
        long m = bytes.Length / size;
        using var scope = NewDisposeScope();
        var raw = tensor(bytes, new long[] { m, 1, h, w }, dtype: ScalarType.Byte);
        return raw.to_type(ScalarType.Float32).div_(255f).MoveToOuterDisposeScope();
    }

    private static Tensor Labels(IdxFile labels, int[]? kept)
    {
        var values = kept is null ? labels.Data.Select(b => (long)b).ToArray() : kept.Select(i => (long)labels.Data[i]).ToArray();
        return tensor(values, dtype: ScalarType.Int64);
    }
}
