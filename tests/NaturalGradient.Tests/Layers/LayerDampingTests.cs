using NaturalGradient.Curvature;
using NaturalGradient.Damping;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// Per-layer damping λ_l = λ · tr(M_l)/p_l: a layer whose output is scaled by 0.01 (metric 10⁻⁴ times the other's) gets
/// its own λ and trains in a few steps, where the same λ shared by both layers leaves it nearly still.
/// </summary>
[Collection("Torch")]
public class LayerDampingTests
{
    /// <summary>r = 0.01 · A x_a + B x_b with x = [x_a x_b] (no biases, which would both fit the mean): A must grow 100 times larger than B.</summary>
    private sealed class BadlyScaled : nn.Module<Tensor, Tensor>
    {
        public readonly Linear a, b;
        public BadlyScaled() : base("badly-scaled")
        {
            manual_seed(8);
            a = nn.Linear(4, 3, hasBias: false, dtype: ScalarType.Float64);
            b = nn.Linear(4, 3, hasBias: false, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => a.call(x.narrow(1, 0, 4)) * 0.01 + b.call(x.narrow(1, 4, 4));
    }

    private static (double First, double Last, BlockDiagonalCurvature Curvature, NaturalGradientDescent Ngd) Train(LayerDamping layerDamping, CurvatureStructure structure)
    {
        var model = new BadlyScaled();
        var x = LayerModels.Normal(50, 32, 8);
        manual_seed(51);
        var teacherA = randn(4, 3, dtype: ScalarType.Float64);
        var teacherB = randn(4, 3, dtype: ScalarType.Float64);
        var y = x.narrow(1, 0, 4).mm(teacherA) + x.narrow(1, 4, 4).mm(teacherB);
        var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 1.0,
            Preconditioner = new PreconditionerOptions
            {
                Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-2, LayerDamping = layerDamping,
            },
        });
        double first = double.NaN, last = double.NaN;
        for (int step = 0; step < 10; step++)
        {
            var report = ngd.Step(x, y);
            if (step == 0) first = report.Loss;
            last = report.Loss;
        }
        return (first, last, (BlockDiagonalCurvature)ngd.Preconditioner.Curvature, ngd);
    }

    [Theory]
    [InlineData(CurvatureStructure.BlockDiagonal)]
    [InlineData(CurvatureStructure.Tengrad)]
    [InlineData(CurvatureStructure.Kfac)]
    public void BadlyScaledLayer_TrainsWithItsOwnDamping_ButNotWithTheSharedOne(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var (firstGlobal, lastGlobal, _, g) = Train(LayerDamping.Global, structure);
        var (firstRelative, lastRelative, curvature, r) = Train(LayerDamping.Relative, structure);
        using (g) using (r)
        {
            Assert.Equal(firstGlobal, firstRelative, 12);
            Assert.True(lastGlobal > 0.3 * firstGlobal, $"{structure}, shared λ: loss {firstGlobal:G4} → {lastGlobal:G4} (expected to stall)");
            Assert.True(lastRelative < 1e-2 * firstRelative, $"{structure}, per-layer λ: loss {firstRelative:G4} → {lastRelative:G4}");
            double ratio = curvature.LastDamping["a"] / curvature.LastDamping["b"];
            Assert.InRange(ratio, 1e-5, 1e-3);   // ≈ 10⁻⁴ × (E‖x_a‖² / E‖x_b‖²)
        }
    }

    [Fact]
    public void RelativeDamping_IsRefusedForNonBlockStructures()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new PreconditionerOptions { Structure = CurvatureStructure.Exact, LayerDamping = LayerDamping.Relative }.Validate());
        Assert.Equal(nameof(PreconditionerOptions.LayerDamping), ex.ParamName);
    }
}
