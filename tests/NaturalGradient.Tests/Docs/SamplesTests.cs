using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using TorchSharp;

namespace NaturalGradient.Tests.Docs;

/// <summary>
/// Runs each sample under samples/ (built by the solution and referenced by this project) and checks the numbers
/// it prints. Samples set process-wide torch state (default dtype, threads); it is restored after each run.
/// </summary>
[Collection("Torch")]
public class SamplesTests
{
    private static string Run(string assembly) => SampleRunner.Run(assembly);

    private static double Number(string text, string pattern)
    {
        var m = Regex.Match(text, pattern);
        Assert.True(m.Success, $"no match for /{pattern}/ in:\n{text}");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    /// <summary>The numbers after the name column of the table row that starts with <paramref name="name"/>.</summary>
    private static double[] Row(string text, string name)
    {
        var line = text.Split('\n').SingleOrDefault(l => l.StartsWith(name, StringComparison.Ordinal));
        Assert.True(line is not null, $"no row '{name}' in:\n{text}");
        return Regex.Matches(line![30..], @"-?\d+\.\d+").Select(m => double.Parse(m.Value, CultureInfo.InvariantCulture)).ToArray();
    }

    [Fact]
    public void WorkedExamples_ReproduceSeed002()
    {
        var text = Run("WorkedExamples");
        const double tol = 5e-5; // printed with 4 decimals

        // Example 1: gradient σ(0) − 1 = −0.5, Fisher σ(0)(1 − σ(0)) = 0.25, natural gradient −2.
        Assert.Equal(-0.5, Number(text, @"gradient (-?\d+\.\d+)   Fisher"), tol);
        Assert.Equal(0.25, Number(text, @"Fisher (\d+\.\d+)   natural"), tol);
        Assert.Equal(-2.0, Number(text, @"natural gradient (-?\d+\.\d+)\n"), tol);
        Assert.Equal(0.5, Number(text, @"plain step:   θ = (\d+\.\d+)"), tol);
        Assert.Equal(1 / (1 + Math.Exp(-0.5)), Number(text, @"plain step:   θ = \d+\.\d+, σ\(θ\) = (\d+\.\d+)"), tol);
        Assert.Equal(2.0, Number(text, @"natural step: θ = (\d+\.\d+)"), tol);
        Assert.Equal(1 / (1 + Math.Exp(-2.0)), Number(text, @"natural step: θ = \d+\.\d+, σ\(θ\) = (\d+\.\d+)"), tol);

        // Example 2: F = Σ⁻¹ = [[2, −1], [−1, 2]] / 3 and the natural gradient Σ(μ − y) = (−4, −5).
        var fisher = Regex.Match(text, @"Fisher \[\[(-?[\d.]+), (-?[\d.]+)\], \[(-?[\d.]+), (-?[\d.]+)\]\]");
        Assert.True(fisher.Success, text);
        var f = Enumerable.Range(1, 4).Select(i => double.Parse(fisher.Groups[i].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(new[] { 2 / 3.0, -1 / 3.0, -1 / 3.0, 2 / 3.0 }, f, (a, b) => Math.Abs(a - b) < tol);
        Assert.Equal(-1.0, Number(text, @"gradient \((-?\d+\.\d+), -?\d+\.\d+\)   natural"), tol);
        Assert.Equal(-2.0, Number(text, @"gradient \(-?\d+\.\d+, (-?\d+\.\d+)\)   natural"), tol);
        Assert.Equal(-4.0, Number(text, @"natural gradient \((-?\d+\.\d+), "), tol);
        Assert.Equal(-5.0, Number(text, @"natural gradient \(-?\d+\.\d+, (-?\d+\.\d+)\)"), tol);

        // Example 3: the natural step lands on σ(2) whatever the scale c; the plain step on σ(c²/2).
        foreach (var c in new[] { 0.1, 1.0, 10.0 })
        {
            string label = $@"c = +{Regex.Escape(c.ToString(CultureInfo.InvariantCulture))}:";
            Assert.Equal(1 / (1 + Math.Exp(-c * c / 2)), Number(text, label + @"  plain step σ\(θ\) = (\d+\.\d+)"), tol);
            Assert.Equal(1 / (1 + Math.Exp(-2.0)), Number(text, label + @".*natural step σ\(θ\) = (\d+\.\d+)"), tol);
        }

        // Example 4: rank K − 1 = 3, the constant direction in the null space, damped solves converge like λ.
        Assert.Equal(3, Number(text, @"rank (\d+) of 4") , 0);
        Assert.True(Number(text, @"‖F·1‖ = ([\d.e+-]+)") < 1e-12, text);
        var gaps = Regex.Matches(text, @"‖\(F \+ λI\)⁻¹∇ − F⁺∇‖ = ([\d.e+-]+)")
            .Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(3, gaps.Length);
        Assert.True(gaps[1] < gaps[0] / 10 && gaps[2] < gaps[1] / 100 && gaps[2] < 1e-4, string.Join(", ", gaps));
    }

    [Fact]
    public void ConvNetSample_KfacTrainsTheConvolutionalModule()
    {
        var text = Run("ConvNet");
        var kfac = Row(text, "K-FAC + SGD(");   // loss@0, @25, @50, @100, @150, test loss, test accuracy
        var sgd = Row(text, "SGD(");
        Assert.Equal(7, kfac.Length);
        Assert.Equal(7, sgd.Length);
        Assert.Equal(kfac[0], sgd[0]);                       // same initial weights
        Assert.True(kfac[4] < 0.05 * kfac[0], text);         // the training loss falls by more than 20×
        Assert.True(kfac[6] >= 0.95, text);                  // test accuracy
        Assert.True(kfac[2] < 0.5 * sgd[2], text);           // at step 50, ahead of SGD alone on the same batches
    }

    [Fact]
    public void WithAdamSample_PreconditionedAdamBeatsAdamOnIllConditionedInputs()
    {
        var text = Run("WithAdam");
        var natural = Row(text, "natural gradient + Adam");  // loss@0, @25, @50, @100, @200, test accuracy
        var adam = Row(text, "Adam ");
        Assert.Equal(6, natural.Length);
        Assert.Equal(6, adam.Length);
        Assert.Equal(natural[0], adam[0]);
        Assert.True(natural[4] < 0.5 * adam[4], text);
        Assert.True(natural[5] > adam[5] && natural[5] >= 0.9, text);
    }
}
