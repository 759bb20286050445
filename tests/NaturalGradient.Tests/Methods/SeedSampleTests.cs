using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using TorchSharp;

using NaturalGradient.Tests.Docs;

namespace NaturalGradient.Tests.Methods;

/// <summary>
/// Runs seed 002's last examples (samples/VariationalInference, samples/TrustRegionPolicy) and checks the numbers they
/// print against independent computations.
/// </summary>
[Collection("Torch")]
public class SeedSampleTests
{
    private static string Run(string assembly) => SampleRunner.Run(assembly);

    private static double[] Vector(string text, string label)
    {
        var m = Regex.Match(text, Regex.Escape(label) + @"\s*=\s*\(([^)]*)\)");
        Assert.True(m.Success, $"no '{label}' in:\n{text}");
        return m.Groups[1].Value.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
    }

    private static int Integer(string text, string pattern)
    {
        var m = Regex.Match(text, pattern);
        Assert.True(m.Success, $"no match for /{pattern}/ in:\n{text}");
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public void VariationalInference_ReachesTheMeanFieldOptimum_FasterThanGradientDescent()
    {
        var text = Run("VariationalInference");
        // The optimum by hand: Λ = XᵀX/s² + αI, μ* = Λ⁻¹Xᵀy/s², σᵢ* = 1/√Λᵢᵢ, for the sample's deterministic data.
        const int n = 40, d = 3;
        const double s2 = 0.25, alpha = 1.0;
        var lambda = new double[d, d];
        var rhs = new double[d];
        for (int i = 0; i < n; i++)
        {
            double t = i / (double)(n - 1);
            double x1 = 4 * Math.Sin(3 * t);
            var row = new[] { 1.0, x1, 0.5 * Math.Cos(5 * t) + 0.3 * x1 };
            double y = 0.7 - 0.4 * row[1] + 1.5 * row[2] + 0.2 * Math.Sin(17 * t);
            for (int a = 0; a < d; a++)
            {
                rhs[a] += row[a] * y / s2;
                for (int b = 0; b < d; b++) lambda[a, b] += row[a] * row[b] / s2;
            }
        }
        for (int a = 0; a < d; a++) lambda[a, a] += alpha;
        var mu = Solve3(lambda, rhs);
        var sigma = Enumerable.Range(0, d).Select(i => 1 / Math.Sqrt(lambda[i, i])).ToArray();

        const double printed = 6e-7;   // F6
        Assert.All(Enumerable.Range(0, d), i =>
        {
            Assert.Equal(mu[i], Vector(text, "μ*")[i], printed);
            Assert.Equal(sigma[i], Vector(text, "σ*")[i], printed);
            Assert.Equal(mu[i], Vector(text, "natural gradient      μ")[i], printed);
            Assert.Equal(sigma[i], Vector(text, "natural gradient      σ")[i], printed);
        });
        int natural = Integer(text, @"natural gradient iterations to \|error\| <= 1e-8: (\d+)");
        int plain = Integer(text, @"gradient descent iterations to \|error\| <= 1e-8: (?:more than )?(\d+)");
        Assert.True(natural * 10 < plain, $"natural {natural} vs plain {plain} iterations");
    }

    private static double[] Solve3(double[,] a, double[] b)
    {
        double Det(double[,] m) =>
            m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]) - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0]) + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]);
        double det = Det(a);
        return Enumerable.Range(0, 3).Select(c =>
        {
            var m = (double[,])a.Clone();
            for (int r = 0; r < 3; r++) m[r, c] = b[r];
            return Det(m) / det;   // Cramer's rule
        }).ToArray();
    }

    [Fact]
    public void TrustRegionPolicy_EveryStepRespectsTheKlBound_AndReachesTheBestReturn()
    {
        var text = Run("TrustRegionPolicy");
        const double delta = 0.01, printed = 6e-7;
        var steps = Regex.Matches(text, @"iteration (\d+): J = (-?\d+\.\d+)  KL = (\d+\.\d+)")
            .Select(m => (J: double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), Kl: double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)))
            .ToList();
        Assert.True(steps.Count >= 5, text);
        Assert.All(steps, s => Assert.True(s.Kl <= delta + printed, $"KL {s.Kl} > δ"));
        Assert.InRange(steps[0].Kl, 0.9 * delta, delta + printed);             // the quadratic model ½βxᵀFx = δ is accurate early
        double j0 = double.Parse(Regex.Match(text, @"iteration 0: J = (-?\d+\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        var js = new[] { j0 }.Concat(steps.Select(s => s.J)).ToList();
        for (int k = 1; k < js.Count; k++) Assert.True(js[k] >= js[k - 1] - printed, $"J fell at iteration {k}: {js[k - 1]} → {js[k]}");
        double final = double.Parse(Regex.Match(text, @"final J = (-?\d+\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        double best = double.Parse(Regex.Match(text, @"always-right J = (-?\d+\.\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(j0 < 0 && final > 0.8, $"J {j0} → {final}");
        Assert.Equal(best, final, 2e-6);
        Assert.Contains("MINRES-QLP Converged", text);
    }
}
