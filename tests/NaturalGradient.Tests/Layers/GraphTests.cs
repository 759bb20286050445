using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// BatchNorm in training mode is refused (for the BatchNorm layer and the layers before it); a validation forward run
/// with gradients on is not a shared layer; the registration report lists every tensor; an applied step (also for tied
/// tensors) is the dense solve, taken once.
/// </summary>
[Collection("Torch")]
public class GraphTests
{
    [Theory]
    [InlineData(CurvatureStructure.Kfac, false)]
    [InlineData(CurvatureStructure.Tengrad, false)]
    [InlineData(CurvatureStructure.BlockDiagonal, true)]
    public void BatchNormInTrainingMode_IsRefusedByName(CurvatureStructure structure, bool excludeBatchNorm)
    {
        using var scope = NewDisposeScope();
        var model = new LayerModels.BatchNormModel(3, 4, 2);
        model.train();
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions
            {
                Structure = structure, Damping = 1e-2,
                // Excluding the BatchNorm layer does not make the layers before it right: still refused.
                IncludeLayer = excludeBatchNorm ? name => name != "bn" : null,
            },
        });
        var before = model.fc1.weight!.detach().clone();
        var ex = Assert.Throws<BatchCouplingException>(() => ngd.Step(LayerModels.Normal(1, 6, 3), LayerModels.Normal(2, 6, 2)));
        Assert.Equal("layer 'bn' (BatchNorm1d) normalises with batch statistics (training mode), which couples the examples of a batch: " +
                     "the per-example gradients and Fisher blocks of this layer and of every layer before it would be wrong. " +
                     "Put it in eval mode for training with natural gradient (bn.eval(), running statistics frozen), or replace it by GroupNorm or LayerNorm.",
            ex.Message);
        Assert.True(model.fc1.weight.detach().eq(before).all().item<bool>(), "weights changed before the refusal");

        // In eval mode the same model trains.
        model.bn.eval();
        Assert.True(ngd.Step(LayerModels.Normal(1, 6, 3), LayerModels.Normal(2, 6, 2)).Applied);
    }

    [Fact]
    public void ValidationForwardWithGradientsOn_IsNotASharedLayer()
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("sequence");
        var options = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Damping = 1e-2 };
        using var clean = new NaturalGradientPreconditioner(c.Model, c.Likelihood, options);
        clean.Capture.Clear();
        clean.CollectMetric(c.Model.call(c.X), c.Y);
        var expected = ((BlockDiagonalCurvature)clean.Curvature).Block("fc1").ToDense();
        clean.Capture.Enabled = false;

        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood, options);
        pc.Capture.Clear();
        var output = c.Model.call(c.X);
        var validation = c.Likelihood.Loss(c.Model.call(LayerModels.Normal(40, 3, 3, 3)), LayerModels.Normal(41, 3, 6));   // gradients on, other m
        Assert.Equal(2, pc.Capture.Layers[0].CallCount);
        pc.CollectMetric(output, c.Y);
        TensorAssert.Close(expected, ((BlockDiagonalCurvature)pc.Curvature).Block("fc1").ToDense(), rtol: 1e-12, label: "K-FAC block with a validation forward");
        Assert.True(validation.requires_grad);
    }

    [Fact]
    public void RegistrationReport_ListsEveryTensorWithItsTreatment()
    {
        using var scope = NewDisposeScope();
        var model = new ReportModel();
        model.ln.bias!.requires_grad = false;
        using var pc = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), new PreconditionerOptions
        {
            Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-2, IncludeLayer = name => name != "skip",
        });
        var report = pc.Coverage();
        var byName = report.Entries.ToDictionary(e => e.Parameter);
        Assert.Equal(new[] { "emb.weight", "fc.weight", "fc.bias", "skip.weight", "skip.bias", "ln.weight", "ln.bias", "gn.weight", "gn.bias" },
            report.Entries.Select(e => e.Parameter).ToArray());
        Assert.Equal("K-FAC (diagonal A from token counts), exact Fisher (GGN)", byName["emb.weight"].Treatment);
        Assert.Equal("K-FAC (expand), exact Fisher (GGN)", byName["fc.weight"].Treatment);
        Assert.Equal("dense per-layer block (not Kronecker-factored), exact Fisher (GGN)", byName["ln.weight"].Treatment);
        Assert.Equal("frozen (requires_grad = false): never updated", byName["ln.bias"].Treatment);
        Assert.StartsWith("plain gradient: no curvature adapter for GroupNorm", byName["gn.weight"].Treatment);
        Assert.Equal("plain gradient: excluded by IncludeLayer", byName["skip.bias"].Treatment);
        Assert.False(report.CoversEveryTrainableTensor);
        var lines = pc.Coverage().SummaryLines();
        Assert.Equal("natural gradient covers 4 of 9 parameter tensors (" + (7 * 4 + 4 * 4 + 4 + 4).ToString("N0") + " of " +
                     report.Entries.Sum(e => e.Count).ToString("N0") + " parameters)", lines[0]);
        Assert.Contains("  ln (LayerNorm: weight): dense per-layer block (not Kronecker-factored), exact Fisher (GGN)", lines);
    }

    /// <summary>
    /// With <c>KfacOptions.InversePrecision = Bfloat16</c> the report says, per Kronecker-factored layer, what its solve
    /// runs in: bfloat16 for float32 tensors (an Embedding too), the model's precision and why for float64 ones; blocks
    /// that are not Kronecker-factored read no such option and say nothing.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.Float32, ", solve in bfloat16")]
    [InlineData(ScalarType.Float64, ", solve in float64 (InversePrecision Bfloat16 applies to float32 models)")]
    public void RegistrationReport_SaysWhatTheBfloat16SolveReaches(ScalarType dtype, string solve)
    {
        using var scope = NewDisposeScope();
        // Once a test in this process has covered a Conv2d layer on an AMD AVX-512 machine, oneDNN is capped at AVX2.
        if (dtype == ScalarType.Float32 && NaturalGradient.Numerics.OneDnnIsaCap.Applied is { } cap)
            solve = $", solve in bfloat16 (emulated: oneDNN is capped at {cap} for this model's Conv2d layers, so it may be slower than float32)";
        else if (dtype == ScalarType.Float32 && NaturalGradient.Numerics.Bfloat16Support.Native == false)
            solve = ", solve in bfloat16 (emulated: this CPU has no bfloat16 instructions, so it may be slower than float32)";
        var model = new ReportModel();
        model.to(dtype);
        foreach (var structure in new[] { CurvatureStructure.Kfac, CurvatureStructure.Ekfac })
        {
            using var pc = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), new PreconditionerOptions
            {
                Structure = structure, Fisher = FisherKind.Exact, Damping = 1e-2,
                Kfac = new KfacOptions { InversePrecision = KfacInversePrecision.Bfloat16 },
            });
            var byName = pc.Coverage().Entries.ToDictionary(e => e.Parameter);
            string name = structure == CurvatureStructure.Kfac ? "K-FAC" : "EKFAC";
            Assert.Equal($"{name} (diagonal A from token counts){solve}, exact Fisher (GGN)", byName["emb.weight"].Treatment);
            Assert.Equal($"{name} (expand){solve}, exact Fisher (GGN)", byName["fc.bias"].Treatment);
            Assert.Equal("dense per-layer block (not Kronecker-factored), exact Fisher (GGN)", byName["ln.weight"].Treatment);
        }
    }

    [Theory]
    [InlineData("embedding")]
    [InlineData("layernorm")]
    [InlineData("siamese-residual")]
    [InlineData("tied-embedding-head")]
    [InlineData("tied-linears")]
    public void NaturalGradientDescentStep_MovesEveryCoveredTensorByTheDenseSolveOnce(string name)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        const double lambda = 0.05, lr = 0.3;
        using var ngd = new NaturalGradientDescent(c.Model, c.Likelihood, new NaturalGradientOptions
        {
            LearningRate = lr,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Exact, Fisher = FisherKind.Exact, Damping = lambda },
        });
        Assert.True(ngd.Preconditioner.Coverage().CoversEveryTrainableTensor);
        var adapters = ngd.Preconditioner.Capture.Layers.Select(l => l.Adapter).ToList();
        ngd.Preconditioner.Capture.Enabled = false;
        var f = LayerBlockTests.ReferenceFisher(c, adapters, FisherKind.Exact);
        c.Model.zero_grad();
        c.Likelihood.Loss(c.Model.call(c.X), c.Y).backward();
        var g = cat(adapters.Select(a => a.GradientMatrix().flatten()).ToArray());
        var before = cat(adapters.Select(a => a.WeightMatrix().flatten()).ToArray());
        ngd.Preconditioner.Capture.Enabled = true;

        Assert.True(ngd.Step(c.X, c.Y).Applied);
        var after = cat(adapters.Select(a => a.WeightMatrix().flatten()).ToArray());
        TensorAssert.Close(-lr * Reference.BruteForce.DampedSolve(f, lambda, g), after - before, rtol: 1e-8, label: $"{name}: applied step");
    }

    private sealed class ReportModel : nn.Module<Tensor, Tensor>
    {
        public readonly Embedding emb;
        public readonly Linear fc, skip;
        public readonly LayerNorm ln;
        public readonly GroupNorm gn;
        public ReportModel() : base("report")
        {
            manual_seed(6);
            emb = nn.Embedding(7, 4, dtype: ScalarType.Float64);
            fc = nn.Linear(4, 4, dtype: ScalarType.Float64);
            ln = nn.LayerNorm(new long[] { 4 }, dtype: ScalarType.Float64);
            gn = nn.GroupNorm(2, 4, dtype: ScalarType.Float64);
            skip = nn.Linear(4, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor tokens)
        {
            var h = ln.call(fc.call(emb.call(tokens))).mean(new long[] { 1 });
            return skip.call(gn.call(h));
        }
    }
}
