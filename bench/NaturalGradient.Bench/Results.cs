using System.Text.Json;
using System.Text.Json.Serialization;

namespace NaturalGradient.Bench;

/// <summary>
/// Where a benchmark's figures go: the raw JSON to <c>results/bench/&lt;name&gt;.json</c> and a Markdown summary to
/// <c>results/bench/&lt;name&gt;.md</c> (repository root; git ignores the folder, so a run leaves the checkout as it was),
/// each through a temporary file and a rename. The runs the docs quote are copies under <c>bench/results/</c>.
/// </summary>
internal static class Results
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The repository root (the folder with NaturalGradient.slnx), or the current folder.</summary>
    public static string Root
    {
        get
        {
            foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
                for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                    if (File.Exists(Path.Combine(dir.FullName, "NaturalGradient.slnx"))) return dir.FullName;
            return Directory.GetCurrentDirectory();
        }
    }

    /// <param name="quiet">True for the partial saves of a run still going: no "saved" line.</param>
    public static void Save(string name, object data, string markdown, bool quiet = false)
    {
        var dir = Path.Combine(Root, "results", "bench");
        Directory.CreateDirectory(dir);
        var json = Path.Combine(dir, name + ".json");
        var md = Path.Combine(dir, name + ".md");
        Write(json, JsonSerializer.Serialize(data, Json) + "\n");
        Write(md, markdown);
        if (!quiet) Console.WriteLine($"saved {Path.GetRelativePath(Root, json)} and {Path.GetRelativePath(Root, md)}");
    }

    private static void Write(string path, string text)
    {
        var tmp = Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Machine facts printed with every result (the machines are shared: say so).</summary>
    public static object Machine() => new
    {
        cpu = CpuModel(),
        logical_processors = Environment.ProcessorCount,
        torch_threads = TorchSharp.torch.get_num_threads(),
        torchsharp = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
        libtorch = TorchSharp.torch.__version__,
        os = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        dotnet = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
        load_average = LoadAverage(),
        omp_wait_policy = OmpWaitPolicy(),
        allocator = Allocator(),
        utc = DateTime.UtcNow.ToString("O"),
    };

    public static string MachineLine()
    {
        var load = LoadAverage();
        return $"{CpuModel() ?? "unknown CPU"}, {Environment.ProcessorCount} logical processors, {TorchSharp.torch.get_num_threads()} torch thread(s), OMP_WAIT_POLICY {OmpWaitPolicy()}, allocator {Allocator()}, " +
               $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}; load average at the start {load ?? "n/a"} (shared machine)";
    }

    private static string? CpuModel()
    {
        try
        {
            var line = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name")) : null;
            return line?[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { return null; }
    }

    /// <summary>
    /// The OpenMP wait policy the process runs with ("default" when unset). It changes LAPACK's speed: with PASSIVE,
    /// threads sleep between parallel regions and the many small regions of a Cholesky inverse or eigendecomposition
    /// of a 500–800 wide matrix pay a wake-up each (docs/PERFORMANCE.md, "Thread wait policy").
    /// </summary>
    public static string OmpWaitPolicy() => Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is { Length: > 0 } p ? p : "default";

    /// <summary>
    /// How glibc's allocator runs: "freed memory retained" when the bench set the thresholds natgrad sets
    /// (<see cref="NaturalGradient.Numerics.NativeAllocator"/>), "thresholds set by the environment" when the process
    /// started with its own, else "glibc defaults" (<c>--allocator default</c>, or not glibc).
    /// </summary>
    public static string Allocator() =>
        NaturalGradient.Numerics.NativeAllocator.Applied
            ? $"freed memory retained (mmap threshold {NaturalGradient.Numerics.NativeAllocator.MmapThreshold >> 20} MiB, trim threshold {NaturalGradient.Numerics.NativeAllocator.TrimThreshold >> 20} MiB, as natgrad)"
            : NaturalGradient.Numerics.NativeAllocator.EnvironmentSetsThresholds ? "thresholds set by the environment" : "glibc defaults";

    private static string? LoadAverage()
    {
        try { return File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : null; }
        catch (IOException) { return null; }
    }
}
