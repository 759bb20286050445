namespace NaturalGradient.Training.Data.Idx;

/// <summary>
/// The four files of an MNIST-style data set: train-images-idx3-ubyte, train-labels-idx1-ubyte,
/// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally gzipped (".gz").
/// </summary>
/// <param name="TrainImages">Training images (rank-3 IDX).</param>
/// <param name="TrainLabels">Training labels (rank-1 IDX).</param>
/// <param name="TestImages">Test images (rank-3 IDX).</param>
/// <param name="TestLabels">Test labels (rank-1 IDX).</param>
public sealed record IdxFileSet(string TrainImages, string TrainLabels, string TestImages, string TestLabels)
{
    /// <summary>The standard file names without ".gz": train images, train labels, test images, test labels.</summary>
    public static IReadOnlyList<string> StandardNames { get; } = new[]
    {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    };

    /// <summary>The four files in <paramref name="directory"/> (each name with ".gz" preferred, else without), or null if any is missing.</summary>
    public static IdxFileSet? Find(string directory)
    {
        var paths = new string[StandardNames.Count];
        for (int i = 0; i < paths.Length; i++)
        {
            var plain = System.IO.Path.Combine(directory, StandardNames[i]);
            if (File.Exists(plain + ".gz")) paths[i] = plain + ".gz";
            else if (File.Exists(plain)) paths[i] = plain;
            else return null;
        }
        return new IdxFileSet(paths[0], paths[1], paths[2], paths[3]);
    }

    /// <summary>The standard names in <paramref name="directory"/> that are missing (with and without ".gz").</summary>
    public static IReadOnlyList<string> Missing(string directory) => StandardNames
        .Where(n => !File.Exists(System.IO.Path.Combine(directory, n + ".gz")) && !File.Exists(System.IO.Path.Combine(directory, n)))
        .ToArray();
}
