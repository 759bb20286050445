using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Optim;

/// <summary>
/// The state of a <see cref="NaturalGradientDescent"/> or <see cref="Preconditioning.NaturalGradientPreconditioner"/>
/// in the style of TorchSharp's optimiser <c>state_dict()</c>: named tensors (momentum buffers, Kronecker factors,
/// eigenbases, inverses, warm starts, generator states), named numbers (damping, step counters, learning rate)
/// and named texts (the curvature structure), enough to continue a run bit for bit.
/// </summary>
/// <remarks>
/// Keys are dotted paths, e.g. <c>curvature.fc1.activation_factor</c>. The dictionary owns its tensors (CPU
/// copies, detached from every dispose scope): <see cref="Dispose"/> frees them. <see cref="save(BinaryWriter)"/>
/// writes a versioned binary form (raw tensor bytes, so values round-trip exactly).
/// </remarks>
public sealed class NaturalGradientStateDict : IDisposable
{
    /// <summary>Version of the binary form written by <see cref="save(BinaryWriter)"/>.</summary>
    public const int FormatVersion = 1;

    private const string Magic = "NaturalGradient.StateDict";

    /// <summary>Named tensors (owned).</summary>
    public SortedDictionary<string, Tensor> Tensors { get; } = new(StringComparer.Ordinal);

    /// <summary>Named numbers (counts are stored exactly up to 2⁵³).</summary>
    public SortedDictionary<string, double> Numbers { get; } = new(StringComparer.Ordinal);

    /// <summary>Named texts.</summary>
    public SortedDictionary<string, string> Texts { get; } = new(StringComparer.Ordinal);

    /// <summary>Stores a detached CPU copy of <paramref name="value"/> under <paramref name="key"/> (replacing any).</summary>
    public void SetTensor(string key, Tensor value)
    {
        using var _ = no_grad();
        var copy = value.detach().cpu().clone().DetachFromDisposeScope();
        if (Tensors.Remove(key, out var old)) old.Dispose();
        Tensors[key] = copy;
    }

    /// <summary>
    /// A fresh copy of the tensor under <paramref name="key"/>, checked against <paramref name="shape"/> if given. The
    /// caller owns it: it is detached from every dispose scope (state that outlives the step).
    /// </summary>
    /// <exception cref="InvalidDataException">The key is missing or the shape differs.</exception>
    public Tensor GetTensor(string key, long[]? shape = null)
    {
        if (!Tensors.TryGetValue(key, out var t)) throw new InvalidDataException($"the state has no tensor '{key}'");
        if (shape is not null && !t.Sizes().SequenceEqual(shape))
            throw new InvalidDataException($"state tensor '{key}' has shape [{string.Join(", ", t.Sizes())}], expected [{string.Join(", ", shape)}]");
        using var _ = no_grad();
        return t.clone().DetachFromDisposeScope();
    }

    /// <summary>True when a tensor is stored under <paramref name="key"/>.</summary>
    public bool HasTensor(string key) => Tensors.ContainsKey(key);

    /// <summary>The number under <paramref name="key"/>.</summary>
    /// <exception cref="InvalidDataException">The key is missing.</exception>
    public double GetNumber(string key) =>
        Numbers.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"the state has no number '{key}'");

    /// <summary>The text under <paramref name="key"/>.</summary>
    /// <exception cref="InvalidDataException">The key is missing.</exception>
    public string GetText(string key) =>
        Texts.TryGetValue(key, out var v) ? v : throw new InvalidDataException($"the state has no text '{key}'");

    /// <summary>Writes the dictionary: a header with <see cref="FormatVersion"/>, then texts, numbers and tensors (dtype, shape, raw bytes).</summary>
    public void save(BinaryWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.Write(Magic);
        writer.Write(FormatVersion);
        writer.Write(Texts.Count);
        foreach (var (k, v) in Texts) { writer.Write(k); writer.Write(v); }
        writer.Write(Numbers.Count);
        foreach (var (k, v) in Numbers) { writer.Write(k); writer.Write(v); }
        writer.Write(Tensors.Count);
        foreach (var (k, t) in Tensors)
        {
            writer.Write(k);
            TensorBytes.Write(writer, t);
        }
    }

    /// <summary>Reads a dictionary written by <see cref="save(BinaryWriter)"/>.</summary>
    /// <exception cref="InvalidDataException">Not a state dictionary, another format version, or truncated.</exception>
    public static NaturalGradientStateDict load(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var state = new NaturalGradientStateDict();
        try
        {
            if (reader.ReadString() != Magic) throw new InvalidDataException("not a NaturalGradient state dictionary");
            int version = reader.ReadInt32();
            if (version != FormatVersion)
                throw new InvalidDataException($"state dictionary format version {version}; this library reads version {FormatVersion}");
            int texts = Count(reader);
            for (int i = 0; i < texts; i++) state.Texts[reader.ReadString()] = reader.ReadString();
            int numbers = Count(reader);
            for (int i = 0; i < numbers; i++) state.Numbers[reader.ReadString()] = reader.ReadDouble();
            int tensors = Count(reader);
            for (int i = 0; i < tensors; i++) state.Tensors[reader.ReadString()] = TensorBytes.Read(reader);
            return state;
        }
        catch (EndOfStreamException)
        {
            state.Dispose();
            throw new InvalidDataException("the state dictionary is truncated");
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    /// <summary>Writes the dictionary to <paramref name="path"/> (temporary file, then rename: an existing file is replaced only by a complete one).</summary>
    public void save(string path)
    {
        var full = Path.GetFullPath(path);
        var temp = full + $".{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            using (var writer = new BinaryWriter(stream, Encoding.UTF8))
            {
                save(writer);
                writer.Flush();
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Reads a dictionary from <paramref name="path"/>.</summary>
    public static NaturalGradientStateDict load(string path)
    {
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        return load(reader);
    }

    private static int Count(BinaryReader reader)
    {
        int n = reader.ReadInt32();
        if (n < 0 || n > 1_000_000) throw new InvalidDataException($"the state dictionary is corrupted (a count of {n})");
        return n;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
        Tensors.Clear();
    }
}

/// <summary>
/// A tensor as dtype, shape, memory layout (strides) and raw little-endian bytes: an exact round trip. The layout
/// matters for bitwise reproducibility: linalg.eigh returns column-major eigenvectors, and a matrix product over a
/// row-major copy may round differently.
/// </summary>
public static class TensorBytes
{
    /// <summary>Writes <paramref name="tensor"/> (copied to a contiguous CPU tensor first).</summary>
    public static void Write(BinaryWriter writer, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var source = tensor.detach().cpu();
        var t = source.contiguous();
        writer.Write((int)t.dtype);
        writer.Write(t.Sizes().Length);
        foreach (var s in t.Sizes()) writer.Write(s);
        var strides = IsDensePermutation(source.Sizes(), source.stride()) ? source.stride() : t.stride();
        foreach (var s in strides) writer.Write(s);
        var bytes = t.bytes.ToArray();
        writer.Write(bytes.LongLength);
        writer.Write(bytes);
    }

    /// <summary>Reads a tensor written by <see cref="Write"/>; the caller owns it (detached from dispose scopes).</summary>
    /// <exception cref="InvalidDataException">An unknown dtype, a bad shape or a byte count that does not match.</exception>
    public static Tensor Read(BinaryReader reader)
    {
        var dtype = (ScalarType)reader.ReadInt32();
        if (!Enum.IsDefined(dtype)) throw new InvalidDataException($"the data is corrupted (unknown tensor dtype {(int)dtype})");
        int rank = reader.ReadInt32();
        if (rank < 0 || rank > 16) throw new InvalidDataException($"the data is corrupted (a tensor of rank {rank})");
        var shape = new long[rank];
        long numel = 1;
        for (int i = 0; i < rank; i++)
        {
            shape[i] = reader.ReadInt64();
            if (shape[i] < 0 || shape[i] > int.MaxValue) throw new InvalidDataException($"the data is corrupted (a tensor dimension of {shape[i]})");
            numel = checked(numel * shape[i]);
        }
        var strides = new long[rank];
        for (int i = 0; i < rank; i++) strides[i] = reader.ReadInt64();
        if (!IsDensePermutation(shape, strides))
            throw new InvalidDataException($"the data is corrupted (strides [{string.Join(", ", strides)}] for shape [{string.Join(", ", shape)}])");
        long length = reader.ReadInt64();
        var t = empty(shape, dtype: dtype);
        long expected = numel * t.ElementSize;
        if (length != expected || length > int.MaxValue)
        {
            t.Dispose();
            throw new InvalidDataException($"the data is corrupted (a tensor of shape [{string.Join(", ", shape)}] with {length} bytes)");
        }
        var bytes = reader.ReadBytes((int)length);
        if (bytes.Length != length)
        {
            t.Dispose();
            throw new EndOfStreamException();
        }
        if (length > 0) t.bytes = bytes;
        if (!strides.SequenceEqual(t.stride()))
        {
            using var _ = no_grad();
            var laidOut = empty_strided(shape, strides, dtype: dtype);
            laidOut.copy_(t);
            t.Dispose();
            t = laidOut;
        }
        return t.DetachFromDisposeScope();
    }

    /// <summary>True when the strides describe a dense, non-overlapping layout (some permutation of row-major).</summary>
    private static bool IsDensePermutation(long[] shape, long[] strides)
    {
        if (strides.Length != shape.Length) return false;
        var order = Enumerable.Range(0, shape.Length).Where(i => shape[i] != 1).OrderBy(i => strides[i]).ToArray();
        long expected = 1;
        foreach (int i in order)
        {
            if (strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }
}
