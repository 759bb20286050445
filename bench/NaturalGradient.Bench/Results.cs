using System.Text.Json;

namespace NaturalGradient.Bench;

/// <summary>Writes a benchmark's figures beside the project: bench/results/&lt;name&gt;.json and .md.</summary>
internal static class Results
{
    public static string Folder
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "NaturalGradient.slnx"))) dir = dir.Parent;
            var folder = Path.Combine(dir?.FullName ?? ".", "bench", "results");
            Directory.CreateDirectory(folder);
            return folder;
        }
    }

    public static void Save(string name, object data, string markdown)
    {
        var json = JsonSerializer.Serialize(data, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });
        Write(Path.Combine(Folder, name + ".json"), json);
        Write(Path.Combine(Folder, name + ".md"), markdown);
        Console.WriteLine($"saved {Path.Combine(Folder, name)}.json and .md");
    }

    private static void Write(string path, string text)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}
