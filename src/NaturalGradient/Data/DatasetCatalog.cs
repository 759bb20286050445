namespace NaturalGradient.Data;

/// <summary>Finds a data set by name (embedded defaults, "fashion-mnist") or by CSV path.</summary>
public static class DatasetCatalog
{
    /// <summary>Names of the data sets shipped inside the library.</summary>
    public static IReadOnlyList<string> EmbeddedNames => throw new NotImplementedException("being written on the data branch");

    /// <summary>Loads an embedded set, "fashion-mnist", or a CSV file at <paramref name="nameOrPath"/>.</summary>
    /// <exception cref="DataFormatException">Bad file content: names file, line and column.</exception>
    public static Dataset Load(string nameOrPath, DataOptions options) => throw new NotImplementedException("being written on the data branch");
}
