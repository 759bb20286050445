using System.Buffers.Binary;
using System.Text;

namespace NaturalGradient.Tests.Observability;

/// <summary>
/// Reads a TensorBoard event file independently of the writer: TFRecord framing checked with a table-driven CRC32C
/// (bit-by-bit polynomial 0x82f63b78), and a hand-written protocol-buffer walk of Event/Summary/Value that skips
/// unknown fields by wire type.
/// </summary>
public static class EventFileReader
{
    public sealed record Event(double WallTime, long Step, string? FileVersion, IReadOnlyList<(string Tag, float Value)> Values);

    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82f63b78u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint c = 0xffffffffu;
        foreach (byte b in data) c = Table[(c ^ b) & 0xff] ^ (c >> 8);
        return c ^ 0xffffffffu;
    }

    private static uint Masked(ReadOnlySpan<byte> data)
    {
        uint c = Crc32C(data);
        return ((c >> 15) | (c << 17)) + 0xa282ead8u;
    }

    /// <summary>Every event of <paramref name="path"/>; throws on a bad CRC or a truncated record.</summary>
    public static List<Event> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var events = new List<Event>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            if (bytes.Length - pos < 12) throw new InvalidDataException($"truncated header at byte {pos}");
            var lengthBytes = bytes.AsSpan(pos, 8);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + 8, 4)) != Masked(lengthBytes))
                throw new InvalidDataException($"bad length CRC at byte {pos}");
            pos += 12;
            if ((ulong)(bytes.Length - pos) < length + 4) throw new InvalidDataException($"truncated record at byte {pos}");
            var data = bytes.AsSpan(pos, (int)length);
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(pos + (int)length, 4)) != Masked(data))
                throw new InvalidDataException($"bad data CRC at byte {pos}");
            events.Add(ParseEvent(data.ToArray()));
            pos += (int)length + 4;
        }
        return events;
    }

    /// <summary>The series of one tag: (step, value) in file order.</summary>
    public static List<(long Step, float Value)> Series(IEnumerable<Event> events, string tag) =>
        events.SelectMany(e => e.Values.Where(v => v.Tag == tag).Select(v => (e.Step, v.Value))).ToList();

    private static Event ParseEvent(byte[] data)
    {
        double wall = 0; long step = 0; string? version = null;
        var values = new List<(string, float)>();
        foreach (var (field, wire, value, payload) in Fields(data))
        {
            if (field == 1 && wire == 1) wall = BitConverter.Int64BitsToDouble((long)value);
            else if (field == 2 && wire == 0) step = (long)value;
            else if (field == 3 && wire == 2) version = Encoding.UTF8.GetString(payload!);
            else if (field == 5 && wire == 2)
                foreach (var (sf, sw, _, sp) in Fields(payload!))
                    if (sf == 1 && sw == 2) values.Add(ParseValue(sp!));
        }
        return new Event(wall, step, version, values);
    }

    private static (string, float) ParseValue(byte[] data)
    {
        string tag = ""; float v = float.NaN;
        foreach (var (field, wire, value, payload) in Fields(data))
        {
            if (field == 1 && wire == 2) tag = Encoding.UTF8.GetString(payload!);
            else if (field == 2 && wire == 5) v = BitConverter.Int32BitsToSingle((int)value);
        }
        return (tag, v);
    }

    /// <summary>(field number, wire type, numeric value, length-delimited payload).</summary>
    private static IEnumerable<(int, int, ulong, byte[]?)> Fields(byte[] data)
    {
        int pos = 0;
        while (pos < data.Length)
        {
            ulong key = Varint(data, ref pos);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, Varint(data, ref pos), null); break;
                case 1: yield return (field, wire, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(pos, 8)), null); pos += 8; break;
                case 5: yield return (field, wire, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(pos, 4)), null); pos += 4; break;
                case 2:
                    int len = (int)Varint(data, ref pos);
                    yield return (field, wire, 0, data.AsSpan(pos, len).ToArray());
                    pos += len;
                    break;
                default: throw new InvalidDataException($"unexpected wire type {wire}");
            }
        }
    }

    private static ulong Varint(byte[] data, ref int pos)
    {
        ulong result = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = data[pos++];
            result |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return result;
        }
    }
}
