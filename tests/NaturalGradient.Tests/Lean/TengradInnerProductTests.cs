using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// TENGraD's ⟨Δ, ḡ⟩ from the push-through solve (the KL clip on η²Δᵀg): Δ = Jᵀu, ḡ = Jᵀ(w·1), so ⟨Δ, ḡ⟩ = w·1ᵀK u
/// from the n × n Gram, without ḡ. Checked in float64 against vec(ḡ)ᵀ(B + λI)⁻¹vec(ḡ) of the dense block and Σ Δ ∘ ḡ of
/// the ordinary solve of autograd's gradient, and through <see cref="NaturalGradientDescent"/> against the eager path.
/// </summary>
[Collection("Torch")]
public class TengradInnerProductTests
{
    private const double Damping = 0.03;

    [Fact]
    public void InnerProduct_EqualsTheDenseQuadraticFormOfTheGradient()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = WideAndNarrowLayers(6);
        for (int l = 0; l < layers.Count; l++)
        {
            using var block = new TengradBlock();
            block.Update(statistics[l], 0);
            var routed = block.PreconditionMeanGradient(statistics[l], Damping, innerProduct: true);
            Assert.NotNull(routed);
            var inner = routed!.Value.GradientInnerProduct!.item<double>();
            var dense = block.ToDense();
            var g = gradients[l].flatten();
            double quadratic = g.dot(linalg.solve(dense + Damping * eye(dense.shape[0], dtype: dense.dtype), g)).item<double>();
            Assert.Equal(quadratic, inner, 1e-9 * Math.Abs(quadratic));
            double solved = block.Precondition(gradients[l], Damping).mul(gradients[l]).sum().item<double>();
            Assert.Equal(solved, inner, 1e-10 * Math.Abs(solved));
            Assert.Null(block.PreconditionMeanGradient(statistics[l], Damping, innerProduct: false)!.Value.GradientInnerProduct);
        }
    }

    /// <summary>
    /// With a binding KL clip on η²Δᵀg the TENGraD step forms no gradient matrix (the push-through solve needs none and
    /// the clip takes w·1ᵀKu) and equals the eager path's (weight decay 1e-300: every .grad by autograd, the clip on the
    /// formed g) to 1e-10, with the same clip scale.
    /// </summary>
    [Fact]
    public void NaturalGradientDescent_WithAGradientKlClip_FormsNoGradientAndStepsAsTheEagerPath()
    {
        using var scope = NewDisposeScope();
        NaturalGradientDescent Optimizer(double weightDecay) => new(TestModels.Mlp(new[] { 30, 40, 3 }, seed: 9), new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.5, Momentum = 0.9, WeightDecay = weightDecay, KlClip = 1e-4, KlClipForm = KlClipForm.PreconditionedGradient,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = Damping },
        });
        using var routed = Optimizer(0);
        using var eager = Optimizer(1e-300);
        for (int s = 0; s < 3; s++)
        {
            using var step = NewDisposeScope();
            var x = TestModels.Inputs(6, 30, seed: 20 + s);
            var y = Labels(6, 3, seed: 30 + s);
            long formed = GradientMatrixList.FormedInProcess;
            var a = routed.Step(x, y);
            Assert.Equal(0, GradientMatrixList.FormedInProcess - formed);
            var b = eager.Step(x, y);
            Assert.True(a.Applied && b.Applied);
            Assert.True(b.KlClipScale < 1, $"step {s}: the clip did not bind ({b.KlClipScale})");
            Assert.Equal(b.KlClipScale, a.KlClipScale, 1e-10);
        }
        foreach (var (pa, pb) in routed.Preconditioner.Layers.Zip(eager.Preconditioner.Layers))
            TensorAssert.Close(pb.WeightMatrix(), pa.WeightMatrix(), rtol: 1e-10, label: pa.Name);
    }

    /// <summary>
    /// The solves leave in the caller's dispose scope only what they return: Δ, and ⟨Δ, ḡ⟩ when it is asked for. The
    /// push-through system's u and the inner product's intermediates end with the solve (they are n-vectors per layer
    /// and call, which a caller's long-lived scope would otherwise accumulate).
    /// </summary>
    [Fact]
    public void Solves_LeaveOnlyTheirResultsInTheCallersScope()
    {
        using var outer = NewDisposeScope();
        var (_, statistics, gradients) = WideAndNarrowLayers(6);
        var own = statistics[0].WithGradientWeight(1.0 / 6);   // the loss's own statistics: g = Jᵀ(w·1), the push-through applies
        using var block = new TengradBlock();
        block.Update(own, 0);
        long pushed = TengradBlock.PushThroughSolves;
        using var scope = NewDisposeScope();
        int Added(Action solve)
        {
            int before = scope.DisposablesCount;
            solve();
            return scope.DisposablesCount - before;
        }
        Assert.Equal(1, Added(() => block.Precondition(gradients[0], Damping)));
        Assert.Equal(1, Added(() => block.PreconditionMeanGradient(own, Damping, innerProduct: false)));
        Assert.Equal(2, Added(() => block.PreconditionMeanGradient(own, Damping, innerProduct: true)));
        Assert.Equal(3, TengradBlock.PushThroughSolves - pushed);
    }
}
