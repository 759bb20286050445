using System.Buffers.Binary;
using System.IO.Compression;

namespace NaturalGradient.Training.Data.Idx;

/// <summary>
/// An IDX file of unsigned bytes (the (Fashion-)MNIST format): a big-endian magic number 0x000008RR (RR = rank),
/// RR big-endian int32 dimensions, then the bytes in row-major order. Gzipped files are recognised by content.
/// </summary>
public sealed class IdxFile
{
    private const byte UnsignedByteType = 0x08;

    private IdxFile(string path, int[] dimensions, byte[] data)
    {
        Path = path;
        Dimensions = dimensions;
        Data = data;
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>Sizes of the dimensions, first = items.</summary>
    public IReadOnlyList<int> Dimensions { get; }

    /// <summary>The values, row-major.</summary>
    public byte[] Data { get; }

    /// <summary>Number of items (size of the first dimension).</summary>
    public int Count => Dimensions[0];

    /// <summary>Magic number of an unsigned-byte IDX file of the given rank (0x00000803 for images, 0x00000801 for labels).</summary>
    public static int MagicNumber(int rank) => (UnsignedByteType << 8) | rank;

    /// <summary>Reads an unsigned-byte IDX file of rank <paramref name="rank"/>, gzipped or not.</summary>
    /// <param name="path">The file.</param>
    /// <param name="rank">Expected number of dimensions (3 for images, 1 for labels).</param>
    /// <param name="contents">What the file should hold, for messages ("images", "labels").</param>
    /// <exception cref="DataFormatException">Missing file, bad magic number, bad sizes, truncated or trailing data, bad gzip.</exception>
    public static IdxFile Read(string path, int rank, string contents)
    {
        if (!File.Exists(path)) throw Error(path, "file not found");
        try
        {
            using var file = File.OpenRead(path);
            using var stream = IsGzip(file) ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
            return Read(stream, path, rank, contents);
        }
        catch (InvalidDataException e)
        {
            throw Error(path, $"not a valid gzip stream ({e.Message})");
        }
    }

    private static IdxFile Read(Stream stream, string path, int rank, string contents)
    {
        var magicBytes = new byte[4];
        if (ReadFully(stream, magicBytes) < 4) throw Error(path, "file ends inside the IDX magic number");
        int magic = BinaryPrimitives.ReadInt32BigEndian(magicBytes);
        int expected = MagicNumber(rank);
        if (magic != expected)
            throw Error(path, $"bad magic number 0x{magic:X8}: expected 0x{expected:X8} (IDX of unsigned bytes with {rank} dimension{(rank == 1 ? "" : "s")}: {contents}){Describe(magic, rank)}");

        var dimensionBytes = new byte[4 * rank];
        if (ReadFully(stream, dimensionBytes) < dimensionBytes.Length)
            throw Error(path, $"file ends inside the header ({rank} dimension sizes expected)");
        var dimensions = new int[rank];
        long size = 1;
        for (int k = 0; k < rank; k++)
        {
            dimensions[k] = BinaryPrimitives.ReadInt32BigEndian(dimensionBytes.AsSpan(4 * k));
            if (dimensions[k] <= 0) throw Error(path, $"dimension {k + 1} has size {dimensions[k]} (must be positive)");
            size *= dimensions[k];
            if (size > Array.MaxLength) throw Error(path, $"header declares more than {Array.MaxLength} values");
        }

        var data = new byte[size];
        int read = ReadFully(stream, data);
        string shape = string.Join(" × ", dimensions);
        if (read < size)
            throw Error(path, $"truncated: the header declares {shape} = {size} bytes of {contents} but only {read} follow");
        if (stream.ReadByte() != -1)
            throw Error(path, $"trailing data: more than the {shape} = {size} bytes of {contents} the header declares");
        return new IdxFile(path, dimensions, data);
    }

    private static string Describe(int magic, int rank)
    {
        if ((magic >> 16) != 0) return " — not an IDX file (or a gzipped file not recognised)";
        int type = (magic >> 8) & 0xFF, actualRank = magic & 0xFF;
        if (type != UnsignedByteType) return $" — data type 0x{type:X2} is not supported (only 0x08, unsigned byte)";
        if (actualRank != rank) return $" — the file has {actualRank} dimension{(actualRank == 1 ? "" : "s")}; images and labels may be swapped";
        return "";
    }

    private static bool IsGzip(FileStream file)
    {
        int b0 = file.ReadByte(), b1 = file.ReadByte();
        file.Position = 0;
        return b0 == 0x1F && b1 == 0x8B;
    }

    private static int ReadFully(Stream stream, byte[] buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer, total, buffer.Length - total);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static DataFormatException Error(string path, string problem) => new(path, null, null, null, problem);
}
