using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// The step's gradient matrices are formed only when something reads them: K-FAC's mean-gradient route forms Δ from
/// the statistics, so a step without KL clip, weight decay or detailed diagnostics assembles no W̄ gradient.
/// </summary>
[Collection("Torch")]
public class GradientMatrixListTests
{
    private static Module<Tensor, Tensor> Net()
    {
        manual_seed(3);
        return Sequential(("fc0", Linear(30, 40, dtype: ScalarType.Float64)), ("act0", Tanh()), ("fc1", Linear(40, 3, dtype: ScalarType.Float64)));
    }

    private static (Tensor X, Tensor Y) Batch(long m = 4)
    {
        manual_seed(4);
        return (randn(m, 30, dtype: ScalarType.Float64), randint(0, 3, new long[] { m }, dtype: ScalarType.Int64));
    }

    private static NaturalGradientDescent Optimizer(Module<Tensor, Tensor> net, double? klClip = null, double weightDecay = 0) =>
        new(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, Momentum = 0.9, KlClip = klClip, WeightDecay = weightDecay,
            KlClipForm = KlClipForm.PreconditionedGradient,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Empirical, Damping = 0.03 },
        });

    private static long FormedBy(Func<NaturalGradientDescent> create, int steps, out List<Tensor> weights, long m = 4)
    {
        using var scope = NewDisposeScope();
        var (x, y) = Batch(m);
        using var ngd = create();
        long before = GradientMatrixList.FormedInProcess;
        for (int i = 0; i < steps; i++)
        {
            using var step = NewDisposeScope();
            Assert.True(ngd.Step(x, y).Applied);
        }
        long formed = GradientMatrixList.FormedInProcess - before;
        weights = ngd.Preconditioner.Layers.Select(l => l.WeightMatrix().detach().clone().MoveToOuterDisposeScope()).ToList();
        return formed;
    }

    /// <summary>
    /// fc0 (40 × 31) at m = 4 takes K-FAC's route, fc1 (3 × 41) does not: of two layers' matrices one is formed per step.
    /// A KL clip on η²Δᵀg takes fc0's Δᵀg from the route's m × m Grams and forms no more; at m = 20, where fc0 still takes
    /// the route but its Grams are dearer than ḡ (20·71 &gt; 40·31), it forms fc0's ḡ for the clip too.
    /// </summary>
    [Fact]
    public void KfacStep_FormsOnlyTheGradientMatricesItReads()
    {
        Assert.True(KroneckerFactors.MeanGradientRouteIsCheaper(4, 40, 31));
        Assert.False(KroneckerFactors.MeanGradientRouteIsCheaper(4, 3, 41));
        Assert.True(KroneckerFactors.GramInnerProductIsCheaper(4, 40, 31));
        Assert.Equal(3, FormedBy(() => Optimizer(Net()), 3, out _));
        long innerProducts = KroneckerFactors.MeanGradientInnerProducts;
        Assert.Equal(3, FormedBy(() => Optimizer(Net(), klClip: 1e6), 3, out _));
        Assert.Equal(3, KroneckerFactors.MeanGradientInnerProducts - innerProducts);
        Assert.True(KroneckerFactors.MeanGradientRouteIsCheaper(20, 40, 31));
        Assert.False(KroneckerFactors.GramInnerProductIsCheaper(20, 40, 31));
        long solves = KroneckerFactors.MeanGradientSolves;
        innerProducts = KroneckerFactors.MeanGradientInnerProducts;
        Assert.Equal(6, FormedBy(() => Optimizer(Net(), klClip: 1e6), 3, out _, m: 20));
        Assert.Equal(3, KroneckerFactors.MeanGradientSolves - solves);
        Assert.Equal(0, KroneckerFactors.MeanGradientInnerProducts - innerProducts);
    }

    /// <summary>
    /// TENGraD with a KL clip on the applied step's ½uᵀMu (w‖Ju‖²) forms no gradient matrix: the clip needs no gᵀu (only
    /// Levenberg–Marquardt's ρ and the detailed report do), and the push-through solve takes Δ from the rows.
    /// </summary>
    [Fact]
    public void TengradStep_WithAStepKlClip_FormsNoGradientMatrix()
    {
        Assert.Equal(0, FormedBy(() => new NaturalGradientDescent(Net(), new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, KlClip = 1e-6, KlClipForm = KlClipForm.StepQuadraticForm,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Tengrad, Fisher = FisherKind.Empirical, Damping = 0.03 },
        }), 3, out _));
    }

    /// <summary>
    /// The steps are those of the preconditioner path on the same batches (backward, Solve of the eagerly formed
    /// gradient matrices, the same momentum), computed here by hand.
    /// </summary>
    [Fact]
    public void KfacStep_WithLazyGradients_EqualsTheSolveOfTheEagerGradients()
    {
        using var scope = NewDisposeScope();
        FormedBy(() => Optimizer(Net()), 3, out var actual);

        var net = Net();
        var (x, y) = Batch();
        using var pre = new NaturalGradientPreconditioner(net, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Empirical, Damping = 0.03 });
        var momentum = new List<Tensor>();
        for (int i = 0; i < 3; i++)
        {
            net.zero_grad();
            pre.Backward(net.call(x), y);
            var delta = pre.Solve(pre.GradientMatrices(), 0.03);
            using var _ = no_grad();
            for (int l = 0; l < delta.Count; l++)
            {
                if (i == 0) momentum.Add(delta[l].clone());
                else momentum[l].mul_(0.9).add_(delta[l]);
                pre.Layers[l].AddToWeights(momentum[l], -0.1);
            }
        }
        for (int l = 0; l < actual.Count; l++)
            TensorAssert.Close(pre.Layers[l].WeightMatrix(), actual[l], rtol: 1e-10, label: pre.Layers[l].Name);
    }

    /// <summary>An entry first read inside a nested dispose scope outlives it; the list disposes what it formed.</summary>
    [Fact]
    public void Entry_FormedInANestedScope_OutlivesIt_AndIsDisposedWithTheList()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        var (x, y) = Batch();
        using var pre = new NaturalGradientPreconditioner(net, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Empirical, Damping = 0.03 });
        pre.Backward(net.call(x), y);
        var eager = pre.GradientMatrices();
        var list = pre.LazyGradientMatrices();
        Tensor first;
        using (NewDisposeScope()) first = list[0];
        TensorAssert.Close(eager[0], first, rtol: 0, label: "entry 0 after its scope");
        Assert.Same(first, list[0]);
        TensorAssert.Close(eager[1], list[1], rtol: 0, label: "entry 1");
        list.Dispose();
        Assert.True(first.IsInvalid);
        Assert.Throws<ObjectDisposedException>(() => list[0]);
    }
}
