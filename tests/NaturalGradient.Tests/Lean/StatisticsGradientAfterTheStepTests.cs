using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Damping;
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

/// <summary>Gradients read after the step, when a layer's input is a tensor the step itself changes.</summary>
[Collection("Torch")]
public class StatisticsGradientAfterTheStepTests
{
    private const ScalarType F64 = ScalarType.Float64;

    /// <summary>
    /// Learned queries (a plain parameter, 4 × 5) through a bias-free Linear (5 → 8) whose output, averaged, is added to
    /// fc0's: the Linear's activations Ā are the queries' own storage, which the step's plain update changes in place.
    /// </summary>
    private sealed class LearnedQueries : Module<Tensor, Tensor>
    {
        private readonly Linear fc0, proj, fc2;
        private readonly Parameter queries;

        public LearnedQueries() : base(nameof(LearnedQueries))
        {
            manual_seed(41);
            fc0 = Linear(12, 8, dtype: F64);
            proj = Linear(5, 8, hasBias: false, dtype: F64);
            fc2 = Linear(8, 3, dtype: F64);
            queries = Parameter(randn(4, 5, dtype: F64));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            fc2.call((fc0.call(x) + proj.call(queries).tanh().mean(new long[] { 0 })).tanh());
    }

    /// <summary>
    /// After a step (inside its scope, as Step's remarks say to read them), GradientMatrices() gives the gradient of the
    /// step's batch at the weights it was taken at: autograd's on a twin network, although the step has since moved the
    /// queries that the projection's activations were.
    /// </summary>
    [Theory]
    [InlineData(FisherKind.Empirical)]
    [InlineData(FisherKind.MonteCarlo)]
    public void GradientMatrices_AfterTheStep_AreTheBatchsGradient_WhenALayersInputIsAParameter(FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        manual_seed(42);
        var x = randn(6, 12, dtype: F64);
        var y = randint(0, 3, new long[] { 6 }, dtype: ScalarType.Int64);
        var twin = new LearnedQueries();
        new CategoricalLikelihood().Loss(twin.call(x), y).backward();
        var expected = twin.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());

        var net = new LearnedQueries();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.5,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = fisher, Damping = 0.05 },
        });
        Assert.True(ngd.Step(x, y).Applied);
        var names = net.named_parameters().ToDictionary(p => TensorIdentity.Key(p.parameter), p => p.name);
        var matrices = ngd.Preconditioner.GradientMatrices();
        var layers = ngd.Preconditioner.Layers;
        Assert.Contains(layers, l => l.Name == "proj");
        for (int i = 0; i < layers.Count; i++)
        {
            var parts = layers[i].Parameters.Select(p => expected[names[TensorIdentity.Key(p)]]).ToList();
            TensorAssert.Close(layers[i].JoinMatrix(parts), matrices[i], rtol: 1e-12, label: $"{fisher}: layer {layers[i].Name}");
        }
    }
}
