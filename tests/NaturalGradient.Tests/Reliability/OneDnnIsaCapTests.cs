using System.Runtime.Intrinsics.X86;
using NaturalGradient.Numerics;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// The oneDNN instruction-set cap (<see cref="OneDnnIsaCap"/>): set to AVX2 only on AMD processors with AVX-512, only
/// when a Conv2d layer is covered and the process has not chosen, and visible to native code (libc getenv), which is where oneDNN reads it.
/// </summary>
[Collection("Torch")]
public class OneDnnIsaCapTests
{
    [Theory]
    [InlineData("AuthenticAMD", true, null, null, true)]
    [InlineData("AuthenticAMD", true, "", "", true)]
    [InlineData("AuthenticAMD", true, "DEFAULT", null, false)]
    [InlineData("AuthenticAMD", true, null, "AVX512_CORE", false)]
    [InlineData("AuthenticAMD", false, null, null, false)]
    [InlineData("GenuineIntel", true, null, null, false)]
    [InlineData(null, false, null, null, false)]
    public void Cap_OnlyOnAmdWithAvx512_WhenTheProcessHasNotChosen(string? vendor, bool avx512, string? onednn, string? dnnl, bool expected) =>
        Assert.Equal(expected, OneDnnIsaCap.ShouldCap(vendor, avx512, onednn, dnnl));

    [Fact]
    public void Vendor_IsTheTwelveCharacterCpuidString_OnX86()
    {
        var vendor = OneDnnIsaCap.Vendor();
        if (!X86Base.IsSupported) { Assert.Null(vendor); return; }
        Assert.NotNull(vendor);
        Assert.Equal(12, vendor!.Length);
        if (File.Exists("/proc/cpuinfo"))
            Assert.Contains($"vendor_id\t: {vendor}", File.ReadAllText("/proc/cpuinfo"));
    }

    /// <summary>
    /// Covering a Conv2d layer decides the cap for the process: on an AMD AVX-512 machine whose environment chose no oneDNN
    /// ISA it is applied, native code reads AVX2 and bfloat16 counts as emulated; elsewhere nothing is set.
    /// </summary>
    [Fact]
    public void CoveringAConv2dLayer_AppliesTheCapWhereTheCpuCallsForIt()
    {
        string? before = OneDnnIsaCap.Applied is null ? OneDnnIsaCap.NativeValue("ONEDNN_MAX_CPU_ISA") : null;
        string? dnnl = OneDnnIsaCap.NativeValue("DNNL_MAX_CPU_ISA");
        using var conv = TorchSharp.torch.nn.Conv2d(1, 2, 3);
        _ = new NaturalGradient.Capture.Conv2dAdapter("conv", conv);
        bool amdAvx512 = OneDnnIsaCap.Vendor() == "AuthenticAMD" && Avx512F.IsSupported;
        if (OneDnnIsaCap.Applied is { } value)
        {
            Assert.True(amdAvx512);
            Assert.Equal("AVX2", value);
            Assert.Equal("AVX2", OneDnnIsaCap.NativeValue("ONEDNN_MAX_CPU_ISA"));
            Assert.False(Bfloat16Support.Native);
        }
        else
        {
            Assert.False(amdAvx512 && string.IsNullOrEmpty(before) && string.IsNullOrEmpty(dnnl),
                "an AMD AVX-512 process without a chosen oneDNN ISA should have been capped");
        }
    }
}
