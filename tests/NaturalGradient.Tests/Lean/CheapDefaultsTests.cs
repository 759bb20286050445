using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Diagnostics;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// The defaults stay cheap (docs/DEFAULTS.md): a KL clip in the default form spends no metric product, and K-FAC/EKFAC
/// accumulate their factors only on the steps s with s mod T_f = 0 of the default factor period T_f &gt; 1.
/// </summary>
[Collection("Torch")]
public class CheapDefaultsTests
{
    private static nn.Module<Tensor, Tensor> Model() => TestModels.Mlp(new[] { 4, 8, 3 }, seed: 2);

    private static (Tensor X, Tensor Y) Batch(long seed)
    {
        var x = TestModels.Inputs(16, 4, seed: seed);
        manual_seed(seed + 100);
        return (x, randint(0, 3, new long[] { 16 }));
    }

    [Fact]
    public void GradientFormKlClip_SpendsNoMetricProduct_AndTheStepFormOnePerStep()
    {
        using var scope = NewDisposeScope();
        // Hessian-free counts its metric products: the solve's, plus one per step when ½uᵀMu is formed.
        long Products(double? clip, KlClipForm? form, out StepReport last)
        {
            var model = Model();
            var (x, y) = Batch(3);
            var options = new NaturalGradientOptions
            {
                LearningRate = 0.1, KlClip = clip,
                Preconditioner = new PreconditionerOptions
                {
                    Structure = CurvatureStructure.HessianFree, Damping = 1e-2,
                    HessianFree = new HessianFreeOptions { MaxIterations = 3, WarmStart = false },
                },
            };
            if (form is { } f) options = options with { KlClipForm = f };
            using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), options);
            last = null!;
            for (int s = 0; s < 4; s++)
            {
                using var step = NewDisposeScope();
                last = ngd.Step(x, y);
            }
            return ((HessianFreeCurvature)ngd.Preconditioner.Curvature).TotalProducts;
        }

        long plain = Products(null, null, out _);
        // A clip that never binds keeps the trajectory (and so the solver's products) of the unclipped run.
        long byGradient = Products(1e30, KlClipForm.PreconditionedGradient, out var gradientReport);
        long byDefault = Products(1e30, null, out _);
        Assert.Equal(plain, byGradient);
        Assert.True(double.IsNaN(gradientReport.PredictedKl), $"predicted KL {gradientReport.PredictedKl} formed by the gradient-form clip");
        Assert.Equal(plain + 4, byDefault);                      // the default step form's uᵀMu, once per step: what the gradient form saves

        Products(1e-12, KlClipForm.PreconditionedGradient, out var bound);   // the gradient form does bind (and still forms no uᵀMu)
        Assert.InRange(bound.KlClipScale, 0, 1 - 1e-6);
        Assert.True(double.IsNaN(bound.PredictedKl));
    }

    [Fact]
    public void TrainerDefaults_KfacAndEkfacUseTheCheapClipAndTheLibrarysFactorPeriod()
    {
        // The core and the neutral trainer settings bound the applied step (momentum included); natgrad's K-FAC and
        // EKFAC take the gradient form with the κ chosen for it (docs/DEFAULTS.md).
        Assert.Equal(KlClipForm.StepQuadraticForm, new NaturalGradientOptions().KlClipForm);
        Assert.Equal(KlClipForm.StepQuadraticForm, new OptimizerSettings().KlClipForm);
        int period = new KfacOptions().FactorUpdatePeriod;
        foreach (var name in new[] { "kfac", "ekfac" })
        {
            var d = MethodDefaults.For(name);
            Assert.Equal(period, d.FactorUpdatePeriod);
            Assert.Equal(KlClipForm.PreconditionedGradient, d.KlClipForm);
            Assert.Equal(1e-2, d.KlClip);
        }
        // Hessian-free's K-FAC solver preconditioner must match the step's own batch: factors every step.
        Assert.Equal(1, MethodDefaults.For("hf").FactorUpdatePeriod);
    }

    [Theory]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Ekfac)]
    public void DefaultFactorPeriod_AccumulatesTheFactorsOnlyOnItsSteps(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        int period = new KfacOptions().FactorUpdatePeriod;
        Assert.True(period > 1, $"the default factor period is {period}: factors every step");
        var model = Model();
        using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1,
            Preconditioner = new PreconditionerOptions { Structure = structure, Damping = 1e-2 },
        });
        var curvature = (BlockDiagonalCurvature)ngd.Preconditioner.Curvature;
        // The first layer's block (the layers are known after the first step).
        Tensor Factors() => curvature.Block(ngd.Preconditioner.Layers[0].Name) switch
        {
            KfacBlock k => cat(new[] { k.ActivationFactor.flatten(), k.OutputGradientFactor.flatten() }).clone(),
            EkfacBlock e => cat(new[] { e.ActivationFactor.flatten(), e.OutputGradientFactor.flatten(), e.Scaling.flatten() }).clone(),
            var b => throw new InvalidOperationException($"unexpected block {b.GetType().Name}"),
        };

        Tensor? before = null;
        for (int s = 0; s <= 2 * period + 1; s++)
        {
            var (x, y) = Batch(10 + s);                       // a new batch every step: a due update changes the factors
            ngd.Step(x, y);
            var now = Factors();
            if (before is not null)
            {
                bool changed = !now.eq(before).all().item<bool>();
                Assert.True(changed == (s % period == 0), $"step {s}: factors {(changed ? "changed" : "unchanged")} with T_f = {period}");
            }
            before = now;
        }
    }
}
