using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Reference;

/// <summary>
/// Two copies of MLP 30-40-3 (float64, the same seed) trained side by side on the same batches: one by
/// <see cref="NaturalGradientDescent.Step"/>, the other by the preconditioner path (Backward, Precondition,
/// torch.optim.SGD with the same learning rate and momentum), which solves the .grad autograd made.
/// </summary>
public static class PathTwins
{
    /// <summary>
    /// Takes <paramref name="steps"/> steps on both (8 examples each, categorical likelihood, lr 0.1), asserts that every
    /// step is applied on both paths and that the weights agree to 1e-10 at the end.
    /// </summary>
    public static void AssertOptimizerStepsAsPreconditionerPath(PreconditionerOptions options, double momentum, string label, int steps = 3)
    {
        var likelihood = new CategoricalLikelihood();
        var a = TestModels.Mlp(new[] { 30, 40, 3 }, seed: 9);
        var b = TestModels.Mlp(new[] { 30, 40, 3 }, seed: 9);
        using var ngd = new NaturalGradientDescent(a, likelihood, new NaturalGradientOptions { LearningRate = 0.1, Momentum = momentum, Preconditioner = options });
        using var pre = new NaturalGradientPreconditioner(b, likelihood, options);
        var sgd = optim.SGD(b.parameters(), 0.1, momentum: momentum);
        for (int s = 0; s < steps; s++)
        {
            using var step = NewDisposeScope();
            var x = TestModels.Inputs(8, 30, seed: 20 + s);
            manual_seed(30 + s);
            var y = randint(0, 3, 8);
            Assert.True(ngd.Step(x, y).Applied);
            sgd.zero_grad();
            pre.Backward(b.call(x), y);
            Assert.True(pre.Precondition().Applied);
            sgd.step();
        }
        foreach (var (pa, pb) in a.parameters().Zip(b.parameters()))
            TensorAssert.Close(pb, pa, rtol: 1e-10, label: label);
    }
}
