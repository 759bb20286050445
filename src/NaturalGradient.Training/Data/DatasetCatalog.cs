using NaturalGradient.Training.Data.Csv;
using NaturalGradient.Training.Data.Idx;

namespace NaturalGradient.Training.Data;

/// <summary>
/// Finds a data set by name (embedded defaults, "fashion-mnist"), by the path of a CSV file, or by the path of a
/// folder holding MNIST-style IDX files.
/// </summary>
public static class DatasetCatalog
{
    /// <summary>Names of the data sets shipped inside the library: weather, weather-class, wine, boston.</summary>
    public static IReadOnlyList<string> EmbeddedNames { get; } = EmbeddedDataset.All.Select(d => d.Name).ToArray();

    /// <summary>Every name <see cref="Load"/> accepts besides paths: the embedded names and "fashion-mnist".</summary>
    public static IReadOnlyList<string> Names { get; } = EmbeddedNames.Append(FashionMnist.Name).ToArray();

    /// <summary>
    /// Loads an embedded set (name compared case-insensitively), "fashion-mnist" (from the Debian package's files),
    /// a CSV file at <paramref name="nameOrPath"/> (then <see cref="DataOptions.TargetColumn"/> is required), or a
    /// folder with the four MNIST-style IDX files (classes named by their label numbers).
    /// </summary>
    /// <exception cref="DataFormatException">Unknown name, missing files, or bad file content: names file, line and column.</exception>
    public static Dataset Load(string nameOrPath, DataOptions options)
    {
        var embedded = EmbeddedDataset.All.FirstOrDefault(d => string.Equals(d.Name, nameOrPath, StringComparison.OrdinalIgnoreCase));
        if (embedded is not null) return embedded.Load(options);
        if (string.Equals(nameOrPath, FashionMnist.Name, StringComparison.OrdinalIgnoreCase)) return FashionMnist.Load(options);
        if (Directory.Exists(nameOrPath))
        {
            var files = IdxFileSet.Find(nameOrPath) ?? throw new DataFormatException(nameOrPath, null, null, null,
                $"folder without IDX files: missing {string.Join(", ", IdxFileSet.Missing(nameOrPath))} (each may be gzipped)");
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(nameOrPath)));
            return IdxDatasetLoader.Load(files, name, null, options, $"IDX files in {Path.GetFullPath(nameOrPath)}");
        }
        if (File.Exists(nameOrPath)) return CsvDatasetLoader.Load(nameOrPath, options);
        throw new DataFormatException(nameOrPath, null, null, null,
            $"no such data set or file: the data sets are {string.Join(", ", Names)}; otherwise give the path of a CSV file");
    }
}
