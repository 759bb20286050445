using System.Runtime.CompilerServices;
using NaturalGradient.Numerics;

namespace NaturalGradient.Tests;

/// <summary>
/// The test process runs Conv2d models from its first tests on, the samples included (loaded into it by
/// <c>SampleRunner</c>), so it applies the library's oneDNN cap when it loads, as an application with Conv2d layers does
/// when it builds its optimiser before its first convolution (docs/TORCHSHARP-ON-LINUX.md). oneDNN reads the cap once,
/// at its first dispatch: applied later, after some test has run a convolution, it would not take effect.
/// </summary>
internal static class OneDnnCapAtStart
{
    [ModuleInitializer]
    internal static void Apply() => OneDnnIsaCap.ForConvolutions();
}
