using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NaturalGradient.Optim;

namespace NaturalGradient.Training;

/// <summary>Why a checkpoint was written.</summary>
public enum CheckpointReason
{
    /// <summary>The <see cref="CheckpointPlan"/>'s period came round.</summary>
    Periodic,
    /// <summary>The run completed.</summary>
    Final,
    /// <summary>The run was cancelled (Ctrl+C, SIGTERM) between steps.</summary>
    Interrupted,
}

/// <summary>
/// What identifies a run and where it stands: checked on resume (another model, method, data or seed is refused)
/// and shown to users. Serialised as JSON inside the checkpoint.
/// </summary>
public sealed record CheckpointHeader
{
    /// <summary>Version of the checkpoint file format.</summary>
    public int FormatVersion { get; init; } = TrainingCheckpoint.FormatVersion;
    /// <summary>Why it was written.</summary>
    public CheckpointReason Reason { get; init; }
    /// <summary>The method's settings (<see cref="OptimizerSettings.ToString"/>): another method or setting is refused.</summary>
    public string Optimizer { get; init; } = "";
    /// <summary>The network (<see cref="Models.ModelSpec.ToString"/>).</summary>
    public string Model { get; init; } = "";
    /// <summary>Input shape of one example.</summary>
    public long[] InputShape { get; init; } = Array.Empty<long>();
    /// <summary>Network outputs.</summary>
    public long Outputs { get; init; }
    /// <summary>Parameter dtype, e.g. "Float32".</summary>
    public string Dtype { get; init; } = "";
    /// <summary>The run's seed.</summary>
    public long Seed { get; init; }
    /// <summary>Training batch size.</summary>
    public int BatchSize { get; init; }
    /// <summary>Training examples (a different data set is refused).</summary>
    public long TrainCount { get; init; }
    /// <summary>Steps per epoch.</summary>
    public long StepsPerEpoch { get; init; }
    /// <summary>Epochs the run was asked for.</summary>
    public int Epochs { get; init; }
    /// <summary>The epoch in progress (1-based); a checkpoint at an epoch's end names the next one.</summary>
    public int Epoch { get; init; }
    /// <summary>Batches of <see cref="Epoch"/> already taken.</summary>
    public long BatchesDone { get; init; }
    /// <summary>Steps taken in all.</summary>
    public long Step { get; init; }
    /// <summary>Wall time of the training loop so far, in seconds.</summary>
    public double ElapsedSeconds { get; init; }
}

/// <summary>
/// A resumable snapshot of a training run: model weights, the method's state (momentum, Adam moments, curvature
/// factors, eigenbases or inverses, damping, step counters), every generator's state (torch's global one, the
/// batch order at the start of the epoch in progress, the method's, the metric sampler's), the position in the
/// data order and the metrics recorded so far.
/// </summary>
/// <remarks>
/// File form (<see cref="Save"/>): the ASCII magic "NGCKPT", the format version (int32), the payload length (int64),
/// the payload's SHA-256 and the payload (header JSON, metrics JSON, <see cref="NaturalGradientStateDict"/>). It is
/// written to a temporary file and renamed over the target, so a reader sees the previous checkpoint or the new
/// one, never a partial file; a truncated or altered file fails the length or hash check.
/// </remarks>
public sealed class TrainingCheckpoint : IDisposable
{
    /// <summary>Version of the file format written by <see cref="Save"/>.</summary>
    public const int FormatVersion = 1;

    private static readonly byte[] Magic = "NGCKPT"u8.ToArray();

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <param name="header">Identity and position.</param>
    /// <param name="steps">Steps recorded so far.</param>
    /// <param name="epochs">Evaluations recorded so far.</param>
    /// <param name="state">Weights, method and generator states; owned by the checkpoint.</param>
    public TrainingCheckpoint(CheckpointHeader header, IReadOnlyList<StepMetrics> steps, IReadOnlyList<EpochMetrics> epochs,
        NaturalGradientStateDict state)
    {
        Header = header;
        Steps = steps;
        Epochs = epochs;
        State = state;
    }

    /// <summary>Identity and position.</summary>
    public CheckpointHeader Header { get; }

    /// <summary>Steps recorded up to the checkpoint.</summary>
    public IReadOnlyList<StepMetrics> Steps { get; }

    /// <summary>Evaluations recorded up to the checkpoint (epoch 0 included).</summary>
    public IReadOnlyList<EpochMetrics> Epochs { get; }

    /// <summary>Named tensors and numbers: <c>model.*</c>, <c>optimizer.*</c>, <c>rng.*</c>.</summary>
    public NaturalGradientStateDict State { get; }

    /// <summary>Writes the checkpoint to <paramref name="path"/> atomically (temporary file in the same folder, then rename).</summary>
    public void Save(string path)
    {
        byte[] payload;
        using (var stream = new MemoryStream())
        {
            using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            {
                w.Write(JsonSerializer.Serialize(Header, Json));
                w.Write(JsonSerializer.Serialize(new MetricsRecord(Steps.ToList(), Epochs.ToList()), Json));
                State.save(w);
            }
            payload = stream.ToArray();
        }
        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var w = new BinaryWriter(file))
            {
                w.Write(Magic);
                w.Write(FormatVersion);
                w.Write((long)payload.Length);
                w.Write(SHA256.HashData(payload));
                w.Write(payload);
                w.Flush();
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Reads a checkpoint written by <see cref="Save"/>. Nothing on disk is changed.</summary>
    /// <exception cref="InvalidDataException">Not a checkpoint, another format version, truncated or corrupted (one line naming the file).</exception>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    public static TrainingCheckpoint Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no checkpoint at {path}", path);
        var bytes = File.ReadAllBytes(path);
        int head = Magic.Length + 4 + 8 + 32;
        if (bytes.Length < Magic.Length || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new InvalidDataException($"{path} is not a natgrad checkpoint");
        if (bytes.Length < head) throw new InvalidDataException($"checkpoint {path} is truncated ({bytes.Length} bytes)");
        int version = BitConverter.ToInt32(bytes, Magic.Length);
        if (version != FormatVersion)
            throw new InvalidDataException($"checkpoint {path} has format version {version}; this natgrad reads version {FormatVersion}");
        long length = BitConverter.ToInt64(bytes, Magic.Length + 4);
        if (length != bytes.Length - head)
            throw new InvalidDataException($"checkpoint {path} is truncated or has trailing bytes ({bytes.Length - head} payload bytes, expected {length})");
        var payload = bytes.AsSpan(head);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(bytes.AsSpan(Magic.Length + 12, 32)))
            throw new InvalidDataException($"checkpoint {path} is corrupted (its SHA-256 does not match its contents)");
        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes, head, (int)length), Encoding.UTF8);
            var header = JsonSerializer.Deserialize<CheckpointHeader>(reader.ReadString(), Json) ?? throw new InvalidDataException("empty header");
            var metrics = JsonSerializer.Deserialize<MetricsRecord>(reader.ReadString(), Json) ?? throw new InvalidDataException("empty metrics");
            var state = NaturalGradientStateDict.load(reader);
            return new TrainingCheckpoint(header, metrics.Steps, metrics.Epochs, state);
        }
        catch (Exception e) when (e is JsonException or EndOfStreamException or InvalidDataException)
        {
            throw new InvalidDataException($"checkpoint {path} is corrupted ({e.Message.Split('\n')[0]})");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => State.Dispose();

    private sealed record MetricsRecord(List<StepMetrics> Steps, List<EpochMetrics> Epochs);
}
