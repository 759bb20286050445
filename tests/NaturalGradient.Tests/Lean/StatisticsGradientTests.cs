using NaturalGradient.Curvature;
using NaturalGradient.Diagnostics;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// <see cref="NaturalGradientDescent.Step"/>'s backward pass stops at the outputs of layers whose gradient the empirical
/// statistics give (w DᵀĀ: one call, one position per example): their .grad is not filled, and the gradient, where read,
/// is formed from the statistics. Checked against autograd's gradient of a twin network and against the step with the
/// eager path (a weight decay of 1e-300, which fills every .grad and takes no route).
/// </summary>
[Collection("Torch")]
public class StatisticsGradientTests
{
    /// <summary>fc0 → tanh → fc1 → tanh → fc2, float64; <paramref name="shared"/>: fc1 (8 → 8) is applied twice.</summary>
    private sealed class Net : Module<Tensor, Tensor>
    {
        private readonly Linear fc0, fc1, fc2;
        private readonly bool _shared;

        public Net(bool shared) : base(nameof(Net))
        {
            manual_seed(11);
            fc0 = Linear(12, 8, dtype: ScalarType.Float64);
            fc1 = Linear(8, 8, dtype: ScalarType.Float64);
            fc2 = Linear(8, 3, dtype: ScalarType.Float64);
            _shared = shared;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = fc1.call(fc0.call(x).tanh()).tanh();
            if (_shared) h = fc1.call(h).tanh();
            return fc2.call(h);
        }
    }

    private static (Tensor X, Tensor Y) Batch()
    {
        manual_seed(12);
        return (randn(6, 12, dtype: ScalarType.Float64), randint(0, 3, new long[] { 6 }, dtype: ScalarType.Int64));
    }

    private static PreconditionerOptions Preconditioner(CurvatureStructure structure, Func<string, bool>? include = null) =>
        new() { Structure = structure, Fisher = FisherKind.Empirical, Damping = 0.03, IncludeLayer = include };

    /// <summary>Autograd's gradients of the mean loss of a twin network, by parameter name.</summary>
    private static Dictionary<string, Tensor> TwinGradients(bool shared)
    {
        var twin = new Net(shared);
        var (x, y) = Batch();
        new CategoricalLikelihood().Loss(twin.call(x), y).backward();
        return twin.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
    }

    /// <summary>
    /// K-FAC with fc1 left out (a plain step): fc0 and fc2 take no .grad, fc1 takes autograd's; the gradient matrices
    /// read inside the step's scope are autograd's, formed from the statistics.
    /// </summary>
    [Fact]
    public void Step_LeavesSingleCallLayersToTheirStatistics_AndFillsThePlainParameters()
    {
        using var scope = NewDisposeScope();
        var expected = TwinGradients(shared: false);
        var net = new Net(shared: false);
        var (x, y) = Batch();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, Preconditioner = Preconditioner(CurvatureStructure.Kfac, name => name != "fc1"),
        });
        Assert.True(ngd.Step(x, y).Applied);
        var grads = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        foreach (var name in new[] { "fc0.weight", "fc0.bias", "fc2.weight", "fc2.bias" })
            Assert.True(grads[name] is null, $"{name} has a .grad");
        TensorAssert.Close(expected["fc1.weight"], grads["fc1.weight"]!, rtol: 1e-12, label: "fc1.weight");
        TensorAssert.Close(expected["fc1.bias"], grads["fc1.bias"]!, rtol: 1e-12, label: "fc1.bias");

        var matrices = ngd.Preconditioner.GradientMatrices();
        var names = ngd.Preconditioner.Layers.Select(l => l.Name).ToList();
        Assert.Equal(new[] { "fc0", "fc2" }, names);
        for (int i = 0; i < names.Count; i++)
        {
            var w = expected[$"{names[i]}.weight"];
            TensorAssert.Close(cat(new[] { w, expected[$"{names[i]}.bias"].unsqueeze(1) }, 1), matrices[i], rtol: 1e-12, label: names[i]);
        }
    }

    /// <summary>A layer applied twice in the forward pass keeps autograd's .grad (the sum over its calls); the others do not.</summary>
    [Fact]
    public void Step_FillsTheGradientOfASharedLayer()
    {
        using var scope = NewDisposeScope();
        var expected = TwinGradients(shared: true);
        var net = new Net(shared: true);
        var (x, y) = Batch();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, Preconditioner = Preconditioner(CurvatureStructure.Kfac),
        });
        Assert.True(ngd.Step(x, y).Applied);
        var grads = net.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad);
        Assert.Null(grads["fc0.weight"]);
        Assert.Null(grads["fc2.weight"]);
        TensorAssert.Close(expected["fc1.weight"], grads["fc1.weight"]!, rtol: 1e-12, label: "fc1.weight (two calls)");
        TensorAssert.Close(expected["fc1.bias"], grads["fc1.bias"]!, rtol: 1e-12, label: "fc1.bias (two calls)");
    }

    /// <summary>Once the step's dispose scope has ended, a gradient left to its statistics cannot be read: one line says why.</summary>
    [Fact]
    public void GradientMatrices_AfterTheStepsScope_IsRefused()
    {
        using var scope = NewDisposeScope();
        var net = new Net(shared: false);
        var (x, y) = Batch();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, Preconditioner = Preconditioner(CurvatureStructure.Kfac),
        });
        using (NewDisposeScope()) Assert.True(ngd.Step(x, y).Applied);
        var error = Assert.Throws<InvalidOperationException>(() => ngd.Preconditioner.GradientMatrices());
        Assert.Equal("the gradient of layer 'fc0' was formed from the statistics of NaturalGradientDescent.Step, whose dispose scope has ended " +
            "(the step's backward pass does not fill .grad of such layers): read it inside the step's scope, or use Backward for .grad", error.Message);
    }

    /// <summary>
    /// Every structure and Fisher without and with a KL clip (on η²Δᵀg, which reads g, and on ½uᵀMu), with detailed
    /// diagnostics (which read g): three steps give the
    /// weights of the eager path, where a weight decay of 1e-300 (below float64's resolution of these gradients) fills
    /// every .grad by autograd and the solve takes no mean-gradient route. With the Monte-Carlo and exact Fisher the
    /// gradient's rows are the loss's D beside the metric's Ā.
    /// </summary>
    [Theory]
    [MemberData(nameof(StructuresAndFishers))]
    public void Steps_EqualTheEagerPath(CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        List<Tensor> Run(double weightDecay, double? klClip, KlClipForm form)
        {
            var net = new Net(shared: false);
            var (x, y) = Batch();
            using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
            {
                LearningRate = 0.1, Momentum = 0.9, WeightDecay = weightDecay, KlClip = klClip, KlClipForm = form,
                Diagnostics = DiagnosticsLevel.Detailed, Preconditioner = Preconditioner(structure, name => name != "fc1") with { Fisher = fisher },
            });
            for (int i = 0; i < 3; i++)
            {
                using var step = NewDisposeScope();
                Assert.True(ngd.Step(x, y).Applied);
            }
            return net.parameters().Select(p => p.detach().clone()).ToList();
        }
        foreach (var (clip, form) in new (double?, KlClipForm)[] { (null, KlClipForm.PreconditionedGradient), (1e-4, KlClipForm.PreconditionedGradient), (1e-4, KlClipForm.StepQuadraticForm) })
        {
            var eager = Run(1e-300, clip, form);
            var lazy = Run(0, clip, form);
            for (int i = 0; i < eager.Count; i++) TensorAssert.Close(eager[i], lazy[i], rtol: 1e-10, label: $"{structure}, {fisher}, KL clip {clip} ({form}), parameter {i}");
        }
    }

    public static TheoryData<CurvatureStructure, FisherKind> StructuresAndFishers()
    {
        var data = new TheoryData<CurvatureStructure, FisherKind>();
        foreach (var s in new[] { CurvatureStructure.Kfac, CurvatureStructure.Ekfac, CurvatureStructure.Tengrad, CurvatureStructure.Diagonal,
                     CurvatureStructure.BlockDiagonal, CurvatureStructure.Exact, CurvatureStructure.Auto })
            foreach (var f in new[] { FisherKind.Empirical, FisherKind.MonteCarlo, FisherKind.Exact })
                data.Add(s, f);
        data.Add(CurvatureStructure.Kbfgs, FisherKind.Empirical);
        data.Add(CurvatureStructure.HessianFree, FisherKind.MonteCarlo);
        return data;
    }

    /// <summary>
    /// With the Monte-Carlo Fisher, K-FAC's step takes the mean-gradient route with the loss's rows (fc0 at m = 6 is
    /// cheaper that way), covered layers get no .grad, and the gradient read inside the step's scope is autograd's.
    /// </summary>
    [Fact]
    public void MonteCarloStep_TakesTheRouteWithTheLossRows()
    {
        using var scope = NewDisposeScope();
        Assert.True(Curvature.Kfac.KroneckerFactors.MeanGradientRouteIsCheaper(6, 8, 13));
        var expected = TwinGradients(shared: false);
        var net = new Net(shared: false);
        var (x, y) = Batch();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1, Preconditioner = Preconditioner(CurvatureStructure.Kfac) with { Fisher = FisherKind.MonteCarlo },
        });
        long before = Curvature.Kfac.KroneckerFactors.MeanGradientSolves;
        Assert.True(ngd.Step(x, y).Applied);
        Assert.True(Curvature.Kfac.KroneckerFactors.MeanGradientSolves > before, "no block took the mean-gradient route");
        Assert.All(net.parameters(), p => Assert.Null(p.grad));
        var matrices = ngd.Preconditioner.GradientMatrices();
        var names = ngd.Preconditioner.Layers.Select(l => l.Name).ToList();
        for (int i = 0; i < names.Count; i++)
            TensorAssert.Close(cat(new[] { expected[$"{names[i]}.weight"], expected[$"{names[i]}.bias"].unsqueeze(1) }, 1), matrices[i], rtol: 1e-12, label: names[i]);
    }
}
