using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Fisher;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Layers;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Methods;

/// <summary>
/// Hessian-free's K-FAC solver preconditioner gives every layer kind the block K-FAC gives it (a dense block for a
/// LayerNorm, the sum of Kronecker terms for a tensor tied in transposed layouts, a diagonal A for an Embedding), so
/// models with these layers train instead of failing on a shape mismatch.
/// </summary>
[Collection("Torch")]
public class HessianFreeKfacPreconditionerLayerTests
{
    [Theory]
    [InlineData("layernorm")]          // measured: 3.816 → 0.881 in 10 steps (0.638 without the preconditioner)
    [InlineData("embedding")]          // 1.055 → 0.103 (the same without)
    [InlineData("tied-embedding-head")] // 1.799 → 0.202 (the same without)
    public void EveryLayerKind_TrainsWithTheKfacSolverPreconditioner(string name)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var ngd = new NaturalGradientDescent(c.Model, c.Likelihood, new NaturalGradientOptions
        {
            LearningRate = 0.3,
            Preconditioner = new PreconditionerOptions
            {
                Structure = CurvatureStructure.HessianFree, Fisher = FisherKind.Exact, Damping = 1e-2,
                HessianFree = new HessianFreeOptions { KfacPreconditioner = true },
            },
        });
        double first = ngd.Step(c.X, c.Y).Loss, last = first;
        for (int step = 1; step < 10; step++) last = ngd.Step(c.X, c.Y).Loss;
        Assert.True(last < 0.5 * first, $"{name}: loss {first:F4} → {last:F4}");
    }
}
