using System.Buffers.Binary;
using System.Text;

namespace NaturalGradient.Training.TensorBoard;

/// <summary>
/// Protocol-buffer encoding of the parts of TensorFlow's <c>Event</c> and <c>Summary</c> messages that scalar logging
/// needs (tensorflow/core/util/event.proto, framework/summary.proto):
/// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; },
/// Summary { repeated Value value = 1; }, Value { string tag = 1; float simple_value = 2; }.
/// </summary>
internal static class EventEncoder
{
    private const int WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5, WireVarint = 0;

    /// <summary>The first event of every file: <c>file_version = "brain.Event:2"</c>.</summary>
    public static byte[] FileVersion(double wallTime)
    {
        var w = new ArrayBufferWriter();
        w.Double(1, wallTime);
        w.Bytes(3, Encoding.UTF8.GetBytes("brain.Event:2"));
        return w.ToArray();
    }

    /// <summary>One event carrying a summary with a simple (float32) value per tag.</summary>
    public static byte[] Scalars(double wallTime, long step, IReadOnlyList<(string Tag, float Value)> values)
    {
        var summary = new ArrayBufferWriter();
        foreach (var (tag, value) in values)
        {
            var v = new ArrayBufferWriter();
            v.Bytes(1, Encoding.UTF8.GetBytes(tag));
            v.Float(2, value);
            summary.Bytes(1, v.ToArray());
        }
        var e = new ArrayBufferWriter();
        e.Double(1, wallTime);
        e.Varint(2, unchecked((ulong)step));
        e.Bytes(5, summary.ToArray());
        return e.ToArray();
    }

    private sealed class ArrayBufferWriter
    {
        private readonly MemoryStream _stream = new();

        public byte[] ToArray() => _stream.ToArray();

        private void Key(int field, int wireType) => RawVarint((ulong)((field << 3) | wireType));

        private void RawVarint(ulong value)
        {
            while (value >= 0x80)
            {
                _stream.WriteByte((byte)(value | 0x80));
                value >>= 7;
            }
            _stream.WriteByte((byte)value);
        }

        public void Varint(int field, ulong value)
        {
            Key(field, WireVarint);
            RawVarint(value);
        }

        public void Double(int field, double value)
        {
            Key(field, WireFixed64);
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteDoubleLittleEndian(b, value);
            _stream.Write(b);
        }

        public void Float(int field, float value)
        {
            Key(field, WireFixed32);
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(b, value);
            _stream.Write(b);
        }

        public void Bytes(int field, byte[] value)
        {
            Key(field, WireLengthDelimited);
            RawVarint((ulong)value.Length);
            _stream.Write(value);
        }
    }
}
