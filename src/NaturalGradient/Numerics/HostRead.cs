using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Numerics;

/// <summary>Reading a small float64 tensor's values on the host.</summary>
internal static class HostRead
{
    /// <summary>The values of <paramref name="values"/> (float64, any shape, row-major); a CPU tensor is read in place, without a copy to the CPU.</summary>
    public static double[] Doubles(Tensor values) =>
        (values.device_type == DeviceType.CPU ? values.data<double>() : values.cpu().data<double>()).ToArray();
}
