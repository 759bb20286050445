using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>
/// One tensor kept across steps outside every dispose scope, for a block that writes the same shape on every step
/// (in place: <c>addmm_</c> with β = 0, <c>copy_</c>). <see cref="Get"/> returns the same storage while the shape,
/// dtype and device stay the same, and makes a new one (releasing the old) when they change; <see cref="Dispose"/>
/// releases it. A new tensor per step of a few megabytes is what makes glibc map and unmap pages on every step
/// (minor page faults; docs/PERFORMANCE.md).
/// </summary>
internal sealed class KeptBuffer : IDisposable
{
    private Tensor? _tensor;
    // What the tensor was made with, kept here: reading a tensor's shape, dtype or device is a native call each.
    private long[] _shape = Array.Empty<long>();
    private ScalarType _dtype;
    private DeviceType _deviceType;
    private int _deviceIndex;

    /// <summary>The kept tensor of <paramref name="shape"/>, <paramref name="dtype"/> and <paramref name="device"/>; its
    /// contents are whatever the last writer left (uninitialised when new).</summary>
    public Tensor Get(ReadOnlySpan<long> shape, ScalarType dtype, Device device)
    {
        if (_tensor is { IsInvalid: false } t && _dtype == dtype && _deviceType == device.type && _deviceIndex == device.index
            && shape.SequenceEqual(_shape))
            return t;
        _tensor?.Dispose();
        (_shape, _dtype, _deviceType, _deviceIndex) = (shape.ToArray(), dtype, device.type, device.index);
        _tensor = empty(_shape, dtype: dtype, device: device).DetachFromDisposeScope();
        return _tensor;
    }

    /// <summary>The kept tensor, or null before the first <see cref="Get"/> and after <see cref="Dispose"/> (for tests of its reuse).</summary>
    public Tensor? Current => _tensor;

    public void Dispose()
    {
        _tensor?.Dispose();
        _tensor = null;
    }
}
