using NaturalGradient.Numerics;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// <see cref="Bfloat16Support"/> reads the bfloat16 instructions from /proc/cpuinfo's text: x86 flags avx512_bf16 or
/// amx_bf16, Arm feature bf16; no such line, no answer.
/// </summary>
public class Bfloat16SupportTests
{
    [Theory]
    [InlineData("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n", true)]
    [InlineData("processor\t: 0\nflags\t\t: fpu sse2 amx_tile amx_bf16 amx_int8\n", true)]
    [InlineData("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 avx512f\n", false)]
    [InlineData("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", true)]
    [InlineData("processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32\n", false)]
    [InlineData("processor\t: 0\nmodel name\t: something\n", null)]
    [InlineData("", null)]
    public void FromCpuInfo_ReadsTheBfloat16Instructions(string text, bool? expected) =>
        Assert.Equal(expected, Bfloat16Support.FromCpuInfo(text));

    [Fact]
    public void Read_OfAMissingFile_IsUnknown() =>
        Assert.Null(Bfloat16Support.Read(Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "cpuinfo")));

    /// <summary>A flag whose name only contains the word (avx512_bf16x) is not the flag.</summary>
    [Fact]
    public void FromCpuInfo_MatchesWholeFlags() =>
        Assert.False(Bfloat16Support.FromCpuInfo("flags\t: avx512_bf16x bf16\n"));
}
