using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// Every structure's solve returns directions the caller owns (<see cref="ICurvature.Precondition"/>):
/// <see cref="Optim.NaturalGradientDescent"/> adds the momentum into them in place and scales them for the KL clip, which
/// must leave the gradients and the curvature's state as they were.
/// </summary>
[Collection("Torch")]
public class OwnedDirectionTests
{
    public static TheoryData<CurvatureStructure> Structures() => new(Enum.GetValues<CurvatureStructure>());

    [Theory]
    [MemberData(nameof(Structures))]
    public void Solve_DirectionsChangedInPlace_LeaveGradientsAndCurvatureAlone(CurvatureStructure structure)
    {
        var model = TestModels.Mlp(new[] { 3, 4, 2 }, seed: 2);
        var x = TestModels.Inputs(16, 3, seed: 3);
        manual_seed(4);
        var y = randint(0, 2, new long[] { 16 });
        using var pre = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(), new PreconditionerOptions
        {
            Structure = structure,
            Damping = 1e-2,
            HessianFree = new HessianFreeOptions { WarmStart = false },   // the second solve starts where the first did
        });
        using var scope = NewDisposeScope();
        pre.Backward(model.call(x), y);
        var g = pre.GradientMatrices();
        var gradientsBefore = g.Select(t => t.clone()).ToList();

        var first = pre.Solve(g, 1e-2);
        var firstBefore = first.Select(t => t.clone()).ToList();
        foreach (var d in first) d.add_(1.0).mul_(-3.0);   // what the step may do to its directions

        for (int i = 0; i < g.Count; i++)
            Assert.Equal(0.0, (g[i] - gradientsBefore[i]).abs().max().ToDouble());
        var second = pre.Solve(g, 1e-2);
        for (int i = 0; i < second.Count; i++)
        {
            double scale = firstBefore[i].abs().max().ToDouble();
            Assert.True((second[i] - firstBefore[i]).abs().max().ToDouble() <= 1e-12 * Math.Max(scale, 1e-300),
                $"{structure}, layer {i}: the second solve differs from the first");
        }
    }
}
