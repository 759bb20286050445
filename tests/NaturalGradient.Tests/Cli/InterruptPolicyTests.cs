using System.Diagnostics;
using NaturalGradient.Cli.Commands;

namespace NaturalGradient.Tests.Cli;

/// <summary>
/// A SIGINT repeated within a second (as `timeout -s INT` delivers it: to the process, then to its group) is the same
/// interrupt and keeps the process alive to write its checkpoint; one a second or more later ends it.
/// </summary>
public class InterruptPolicyTests
{
    private static long At(double seconds) => (long)(seconds * Stopwatch.Frequency);

    [Fact]
    public void RepeatWithinTheGrace_IsAbsorbed_ALaterOneEndsTheProcess()
    {
        var policy = new InterruptPolicy();
        Assert.True(policy.KeepRunning(At(100)));          // the first: stop between steps
        Assert.True(policy.KeepRunning(At(100.02)));       // the same interrupt, 20 ms later
        Assert.True(policy.KeepRunning(At(100.9)));
        Assert.False(policy.KeepRunning(At(101.5)));       // a second Ctrl+C: end now
    }

    [Fact]
    public void ASecondInterruptAfterTheGrace_EndsTheProcess()
    {
        var policy = new InterruptPolicy();
        Assert.True(policy.KeepRunning(At(5)));
        Assert.False(policy.KeepRunning(At(6)));
    }
}
