using System.IO.Compression;
using NaturalGradient.Training.Data;

namespace NaturalGradient.Tests.Data;

/// <summary>A fresh temporary folder for test files, deleted on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder() => System.IO.Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "ng-data-" + Guid.NewGuid().ToString("N"));

    /// <summary>Writes <paramref name="text"/> verbatim to a file in the folder and returns its path.</summary>
    public string Write(string fileName, string text)
    {
        var path = System.IO.Path.Combine(Path, fileName);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Writes bytes, gzipped when <paramref name="gzip"/>, and returns the path.</summary>
    public string WriteBytes(string fileName, byte[] bytes, bool gzip)
    {
        var path = System.IO.Path.Combine(Path, fileName);
        using var file = File.Create(path);
        if (!gzip) { file.Write(bytes); return path; }
        using var zip = new GZipStream(file, CompressionLevel.Fastest);
        zip.Write(bytes);
        return path;
    }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Checks on <see cref="DataFormatException"/> messages.</summary>
public static class DataErrorAssert
{
    /// <summary>Asserts that loading throws a one-line message naming the file, the line and the column, and containing each of <paramref name="fragments"/>.</summary>
    public static DataFormatException At(Action load, string file, int line, int column, params string[] fragments)
    {
        var e = Assert.Throws<DataFormatException>(load);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(file, e.Message);
        Assert.Contains($"line {line},", e.Message);
        Assert.Contains($"column {column}", e.Message);
        Assert.Equal(line, e.Line);
        Assert.Equal(column, e.Column);
        foreach (var fragment in fragments) Assert.Contains(fragment, e.Message);
        return e;
    }

    /// <summary>Asserts a one-line message naming the file, the line and the given column name.</summary>
    public static DataFormatException AtNamedColumn(Action load, string file, int line, string columnName, params string[] fragments)
    {
        var e = Assert.Throws<DataFormatException>(load);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(file, e.Message);
        Assert.Contains($"line {line}", e.Message);
        Assert.Contains(columnName, e.Message);
        foreach (var fragment in fragments) Assert.Contains(fragment, e.Message);
        return e;
    }
}
