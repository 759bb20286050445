using System.Text.Json;
using System.Text.Json.Serialization;

namespace NaturalGradient.Training.Experiments.Compare;

/// <summary>
/// Finished runs of a comparison, one folder each (<c>runs/&lt;key&gt;/result.json</c>), so that repeating a
/// comparison (e.g. with more optimisers) recomputes nothing that is already there. A folder without a
/// readable result.json (an interrupted run) counts as absent.
/// </summary>
public sealed class RunCache
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public RunCache(string root) => Root = root;

    public string Root { get; }

    public string FolderOf(string key) => Path.Combine(Root, key);

    private string ResultPath(string key) => Path.Combine(FolderOf(key), "result.json");

    /// <summary>The cached result, or null when there is none or it cannot be read.</summary>
    public CompareRunResult? TryLoad(string key)
    {
        var path = ResultPath(key);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<CompareRunResult>(File.ReadAllText(path), Json);
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Writes result.json last, through a temporary file and a rename: its presence means the run is complete.</summary>
    public void Save(string key, CompareRunResult result)
    {
        Directory.CreateDirectory(FolderOf(key));
        var path = ResultPath(key);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(result, Json));
        File.Move(tmp, path, overwrite: true);
    }

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Json);
}
