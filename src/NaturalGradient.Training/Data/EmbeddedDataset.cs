using System.Reflection;
using NaturalGradient.Training.Data.Csv;

namespace NaturalGradient.Training.Data;

/// <summary>
/// A small real data set compiled into the library (see Data/Embedded/PROVENANCE.md): which CSV resource,
/// which column is the target, which columns are not features, and where the data came from.
/// </summary>
/// <param name="Name">Catalog name.</param>
/// <param name="FileName">Resource file name (logical name NaturalGradient.Training.Data.&lt;file&gt;).</param>
/// <param name="TargetColumn">Default target column.</param>
/// <param name="Task">Default task.</param>
/// <param name="IgnoreColumns">Columns that are not features by default.</param>
/// <param name="Description">One line for listings.</param>
/// <param name="Provenance">One line: original source, licence, Debian package.</param>
public sealed record EmbeddedDataset(string Name, string FileName, string TargetColumn, TaskKind Task,
    IReadOnlyList<string> IgnoreColumns, string Description, string Provenance)
{
    private const string WeatherProvenance =
        "Seattle daily weather 2012-2015 (NOAA, public domain) via vega-datasets 0.9, Debian package python3-vega-datasets 0.9+dfsg-1";

    /// <summary>Seattle weather, regression of the day's maximum temperature.</summary>
    public static EmbeddedDataset Weather { get; } = new("weather", "seattle-weather.csv", "temp_max", TaskKind.Regression,
        new[] { "date", "weather" },
        "Seattle daily weather 2012-2015: predict temp_max from precipitation, temp_min, wind (1461 rows)",
        WeatherProvenance);

    /// <summary>Seattle weather, classification of the day's weather label.</summary>
    public static EmbeddedDataset WeatherClass { get; } = new("weather-class", "seattle-weather.csv", "weather", TaskKind.Classification,
        new[] { "date" },
        "Seattle daily weather 2012-2015: classify the weather (drizzle, fog, rain, snow, sun) from precipitation, temp_max, temp_min, wind (1461 rows)",
        WeatherProvenance);

    /// <summary>UCI Wine recognition.</summary>
    public static EmbeddedDataset Wine { get; } = new("wine", "wine.csv", "class", TaskKind.Classification,
        Array.Empty<string>(),
        "Wine recognition: 3 cultivars from 13 chemical measurements (178 rows; linearly separable)",
        "UCI Wine recognition data (Forina et al.) via scikit-learn 1.2.1, BSD-3-Clause, Debian package python3-sklearn 1.2.1+dfsg-1");

    /// <summary>Boston house prices without the B column.</summary>
    public static EmbeddedDataset Boston { get; } = new("boston", "boston.csv", "MEDV", TaskKind.Regression,
        Array.Empty<string>(),
        "Boston house prices: predict MEDV from 12 features, column B dropped (506 rows)",
        "Boston house prices (Harrison & Rubinfeld 1978, StatLib) via scikit-learn 1.2.1, BSD-3-Clause, Debian package python3-sklearn 1.2.1+dfsg-1; column B dropped");

    /// <summary>All embedded data sets, in listing order.</summary>
    public static IReadOnlyList<EmbeddedDataset> All { get; } = new[] { Weather, WeatherClass, Wine, Boston };

    /// <summary>Manifest resource name of the CSV file.</summary>
    public string ResourceName => "NaturalGradient.Training.Data." + FileName;

    /// <summary>
    /// Loads the set. <see cref="DataOptions.TargetColumn"/>, <see cref="DataOptions.Task"/> and a non-empty
    /// <see cref="DataOptions.IgnoreColumns"/> override the defaults; delimiter and header options are the file's own.
    /// </summary>
    public Dataset Load(DataOptions options)
    {
        var target = options.TargetColumn ?? TargetColumn;
        var ignore = options.IgnoreColumns.Count > 0 ? options.IgnoreColumns : IgnoreColumns.Where(c => c != target).ToArray();
        var effective = options with
        {
            TargetColumn = target,
            Task = options.Task ?? (target == TargetColumn ? Task : null),
            IgnoreColumns = ignore,
            Delimiter = ',',
            HasHeader = true,
            ColumnNames = null,
        };
        using var stream = typeof(EmbeddedDataset).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"resource {ResourceName} is missing from {typeof(EmbeddedDataset).Assembly.GetName().Name}");
        using var reader = new StreamReader(stream);
        return CsvDatasetLoader.Load(reader, $"{FileName} (embedded)", effective, Name, Provenance);
    }
}
