namespace NaturalGradient.Training.Data.Idx;

/// <summary>
/// Fashion-MNIST (Zalando Research; 60 000 training and 10 000 test greyscale 28 × 28 images of 10 kinds of
/// clothing), read from the files of the Debian package <c>dataset-fashion-mnist</c>.
/// </summary>
public static class FashionMnist
{
    /// <summary>Catalog name.</summary>
    public const string Name = "fashion-mnist";

    /// <summary>Where the Debian package puts the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    /// <summary>The ten class names, by label value.</summary>
    public static IReadOnlyList<string> ClassNames { get; } = new[]
    {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    };

    /// <summary>True when all four files are in <paramref name="directory"/> (default: <see cref="DefaultDirectory"/>).</summary>
    public static bool IsAvailable(string? directory = null) => IdxFileSet.Find(directory ?? DefaultDirectory) is not null;

    /// <summary>Loads Fashion-MNIST (see <see cref="IdxDatasetLoader"/> for shapes and options).</summary>
    /// <param name="options">Only <see cref="DataOptions.MaxTrainExamples"/> and <see cref="DataOptions.Seed"/> apply.</param>
    /// <param name="directory">Folder holding the four (gzipped) IDX files; default <see cref="DefaultDirectory"/>.</param>
    /// <exception cref="DataFormatException">Files absent (the message says how to install them) or malformed.</exception>
    public static Dataset Load(DataOptions options, string? directory = null)
    {
        directory ??= DefaultDirectory;
        var files = IdxFileSet.Find(directory) ?? throw new DataFormatException(
            $"fashion-mnist not found at {directory}: install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)");
        return IdxDatasetLoader.Load(files, Name, ClassNames, options,
            $"Fashion-MNIST (Zalando Research, MIT licence; https://github.com/zalandoresearch/fashion-mnist) from {directory}");
    }
}
