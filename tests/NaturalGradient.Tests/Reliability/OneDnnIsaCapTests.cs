using System.Runtime.Intrinsics.X86;
using NaturalGradient.Numerics;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// The oneDNN instruction-set cap (<see cref="OneDnnIsaCap"/>): set to AVX2 only on AMD processors with AVX-512 and only
/// when the process has not chosen, and visible to native code (libc getenv), which is where oneDNN reads it.
/// </summary>
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

    /// <summary>In this process: when the cap was applied, native code reads AVX2; on an AMD AVX-512 machine it was
    /// applied unless the variable was set before the process started.</summary>
    [Fact]
    public void InThisProcess_TheCapIsWhatNativeCodeReads()
    {
        _ = OneDnnIsaCap.Applied;   // the assembly is loaded: its initializer has run
        if (OneDnnIsaCap.Applied is { } value)
        {
            Assert.Equal("AVX2", value);
            Assert.Equal("AVX2", OneDnnIsaCap.NativeValue("ONEDNN_MAX_CPU_ISA"));
            Assert.Equal("AuthenticAMD", OneDnnIsaCap.Vendor());
            Assert.True(Avx512F.IsSupported);
        }
        else if (OneDnnIsaCap.Vendor() == "AuthenticAMD" && Avx512F.IsSupported)
        {
            Assert.False(string.IsNullOrEmpty(OneDnnIsaCap.NativeValue("ONEDNN_MAX_CPU_ISA")) && string.IsNullOrEmpty(OneDnnIsaCap.NativeValue("DNNL_MAX_CPU_ISA")),
                "an AMD AVX-512 process without a chosen oneDNN ISA should have been capped");
        }
    }
}
