using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Training;
using NaturalGradient.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Observability;

/// <summary>The library reports through return values, events and ILogger: it never writes to stdout or stderr.</summary>
[Collection("Torch")]
public class QuietLibraryTests
{
    private static string Captured(Action action)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var sink = new StringWriter();
        Console.SetOut(sink);
        Console.SetError(sink);
        try { action(); }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
        return sink.ToString();
    }

    public static TheoryData<CurvatureStructure> Structures() => new(Enum.GetValues<CurvatureStructure>());

    [Theory]
    [MemberData(nameof(Structures))]
    public void NaturalGradientDescent_EveryStructure_Steps_WriteNothing(CurvatureStructure structure)
    {
        var text = Captured(() =>
        {
            var model = TestModels.Mlp(new[] { 3, 4, 2 }, seed: 2);
            var x = TestModels.Inputs(16, 3, seed: 3);
            manual_seed(4);
            var y = randint(0, 2, new long[] { 16 });
            using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
            {
                // K-BFGS takes the empirical Fisher only (its secant pairs are changes of the loss gradient).
                Preconditioner = new PreconditionerOptions
                {
                    Structure = structure, Fisher = structure == CurvatureStructure.Kbfgs ? FisherKind.Empirical : FisherKind.Exact, Damping = 1e-2,
                },
                Diagnostics = NaturalGradient.Diagnostics.DiagnosticsLevel.Detailed,
            });
            for (int i = 0; i < 3; i++)
                using (NewDisposeScope()) ngd.Step(x, y);
            using var pre = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
                new PreconditionerOptions { Structure = structure, Damping = 1e-2 });
            using (NewDisposeScope())
            {
                model.zero_grad();
                pre.Backward(model.call(x), y);
                pre.Precondition();
            }
        });
        Assert.Equal("", text);
    }

    [Fact]
    public void SkippedStep_GoesToTheLoggerOnly()
    {
        var text = Captured(() =>
        {
            var model = TestModels.Mlp(new[] { 3, 4, 2 }, seed: 2);
            var x = TestModels.Inputs(16, 3, seed: 3);
            x[0, 0] = tensor(double.NaN);
            manual_seed(4);
            using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
            {
                Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Diagonal, Fisher = FisherKind.Exact, Damping = 1e-2 },
            });
            using (NewDisposeScope()) Assert.False(ngd.Step(x, randint(0, 2, new long[] { 16 })).Applied);
        });
        Assert.Equal("", text);
    }

    [Fact]
    public void Trainer_EveryCatalogMethod_WritesNothing()
    {
        foreach (var name in OptimizerCatalog.Default.Names)
        {
            var text = Captured(() =>
            {
                using var data = TinyData.Classification();
                new Trainer(new ModelSpec { Hidden = new[] { 4 } }, new OptimizerSettings { Name = name, LearningRate = 0.05 },
                    new TrainerOptions { Epochs = 1, BatchSize = 20 }).Run(data);
            });
            Assert.True(text == "", $"{name} wrote: {text}");
        }
    }
}
