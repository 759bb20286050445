using System.Buffers.Binary;
using System.Numerics;

namespace NaturalGradient.Training.TensorBoard;

/// <summary>
/// TFRecord framing, the container of TensorBoard event files: each record is
/// <c>uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)</c>, little-endian, where
/// masked(c) = ((c ≫ 15) | (c ≪ 17)) + 0xa282ead8 and CRC32C is the Castagnoli CRC (TensorFlow's record_writer.cc,
/// crc32c.h).
/// </summary>
public static class TfRecord
{
    private const uint MaskDelta = 0xa282ead8;

    /// <summary>CRC32C (Castagnoli, reflected polynomial 0x82f63b78) of <paramref name="data"/>; "123456789" gives 0xe3069283.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>The masked CRC TFRecords store, so that a CRC of data containing CRCs stays well distributed.</summary>
    public static uint MaskedCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return ((crc >> 15) | (crc << 17)) + MaskDelta;
    }

    /// <summary>Writes one framed record holding <paramref name="data"/> to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, ReadOnlySpan<byte> data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], MaskedCrc32C(header[..8]));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, MaskedCrc32C(data));
        stream.Write(header);
        stream.Write(data);
        stream.Write(footer);
    }
}
