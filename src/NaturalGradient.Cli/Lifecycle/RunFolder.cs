using System.Text.Json;
using NaturalGradient.Training;
using NaturalGradient.Training.Models;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Cli.Commands;

/// <summary>
/// A run folder's lifecycle files: run.json (the command line, written before training, read by --resume),
/// model.json and model.pt (the trained model), checkpoint.ngck (the latest checkpoint). Checks the folder before any work.
/// </summary>
internal static class RunFolder
{
    public const string RunFile = "run.json";
    public const string CheckpointFile = "checkpoint.ngck";

    /// <summary>Files that mark a folder as holding a run.</summary>
    private static readonly string[] RunMarkers =
        { RunFile, CheckpointFile, SavedModel.DescriptionFile, SavedModel.WeightsFile, "config.json", "steps.csv", "epochs.csv", "metrics.json" };

    /// <summary>The default output folder, or the first of dir-2, dir-3, … that holds no run (two runs started in the same second).</summary>
    public static string Unused(string dir)
    {
        if (!HoldsRun(dir)) return dir;
        for (int i = 2; ; i++)
            if (!HoldsRun($"{dir}-{i}")) return $"{dir}-{i}";
    }

    private static bool HoldsRun(string dir) => File.Exists(dir) || (Directory.Exists(dir) && RunMarkers.Any(m => File.Exists(Path.Combine(dir, m))));

    /// <summary>
    /// Checks that <paramref name="dir"/> can receive a new run before any work starts: not a file, writable (a probe
    /// file is created and removed), and not holding an earlier run unless <paramref name="force"/>. Changes nothing:
    /// an earlier run is removed only by <see cref="RemoveRun"/>, once the new run is certain to start.
    /// </summary>
    /// <exception cref="UsageException">One line naming the folder and the problem.</exception>
    public static void CheckNew(string dir, bool force)
    {
        if (File.Exists(dir)) throw new UsageException($"--out '{dir}' is a file, not a folder");
        if (HoldsRun(dir) && !force)
            throw new UsageException($"--out '{dir}' holds an earlier run; give --force to overwrite it, or --resume '{dir}' to continue it");
        CheckWritable(dir, "--out");
    }

    /// <summary>
    /// Removes the files of an earlier run from <paramref name="dir"/> (run.json, checkpoint.ngck, model.pt, model.json,
    /// config.json, steps.csv, epochs.csv, metrics.json), leaving any other file. Called by <c>--force</c> when the new
    /// run starts, after every check that could refuse it.
    /// </summary>
    public static void RemoveRun(string dir)
    {
        if (!Directory.Exists(dir)) return;   // --force on a folder that does not exist yet: nothing to remove
        foreach (var m in RunMarkers) File.Delete(Path.Combine(dir, m));
    }

    /// <summary>Proves <paramref name="dir"/> writable (<see cref="ProbeWritable"/>); creates nothing.</summary>
    public static void CheckWritable(string dir, string option)
    {
        try
        {
            ProbeWritable(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            throw new UsageException($"{option} '{dir}' is not a writable folder ({e.Message.Split('\n')[0].TrimEnd('.')})");
        }
    }

    /// <summary>
    /// Proves that <paramref name="dir"/> can be created (if missing) and written, without creating anything: no part of
    /// its path is a file, and its nearest existing ancestor accepts a new file (a probe deleted on close).
    /// </summary>
    /// <exception cref="IOException">A part of the path is a file, or the probe cannot be created.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder does not accept new files.</exception>
    public static void ProbeWritable(string dir)
    {
        var existing = Path.GetFullPath(dir);
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing)) throw new IOException($"'{existing}' is a file");
            existing = Path.GetDirectoryName(existing) ?? throw new IOException("no existing folder on its path");
        }
        using (File.Create(Path.Combine(existing, $".natgrad-probe-{Guid.NewGuid():N}"), 1, FileOptions.DeleteOnClose)) { }
    }

    /// <summary>Writes run.json: the arguments of the run (without --force), so that --resume can rebuild it.</summary>
    public static void WriteRun(string dir, IReadOnlyList<string> arguments)
    {
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, RunFile);
        var temp = path + $".{Guid.NewGuid():N}.tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(new RunRecord(1, arguments.ToArray()), new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Reads the arguments of the run in <paramref name="dir"/>.</summary>
    /// <exception cref="UsageException">No run there, or an unreadable run.json.</exception>
    public static string[] ReadRun(string dir)
    {
        var path = Path.Combine(dir, RunFile);
        if (!File.Exists(path)) throw new UsageException($"--resume '{dir}' holds no natgrad run ({RunFile} is missing)");
        try
        {
            var record = JsonSerializer.Deserialize<RunRecord>(File.ReadAllText(path));
            if (record?.Arguments is not { Length: > 0 } args) throw new JsonException("no arguments");
            return args;
        }
        catch (JsonException e)
        {
            throw new UsageException($"--resume: {path} is not a valid run description ({e.Message.Split('\n')[0]})");
        }
    }

    /// <summary>The checkpoint plan of a run writing into <paramref name="dir"/>: checkpoint.ngck and model.pt, each atomically.</summary>
    public static CheckpointPlan Plan(string dir, long? everySteps, int? everyEpochs) => new()
    {
        EverySteps = everySteps,
        EveryEpochs = everyEpochs,
        Write = (checkpoint, model) =>
        {
            checkpoint.Save(Path.Combine(dir, CheckpointFile));
            SaveWeights(dir, model);
        },
    };

    /// <summary>model.pt in TorchSharp's Module.save format (temporary file, then rename).</summary>
    public static void SaveWeights(string dir, Module<Tensor, Tensor> model)
    {
        var path = Path.Combine(dir, SavedModel.WeightsFile);
        var temp = Path.Combine(dir, $".{SavedModel.WeightsFile}.{Guid.NewGuid():N}.tmp");
        try
        {
            model.save(temp);
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    private sealed record RunRecord(int FormatVersion, string[] Arguments);
}
