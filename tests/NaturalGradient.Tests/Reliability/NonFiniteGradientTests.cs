using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// A regression batch with one NaN target: the loss and the gradient are NaN, but with the exact Fisher the statistics
/// (which do not read the targets) are finite, so the curvature takes the batch and only the direction can reject the
/// step. Every structure must skip it (NonFiniteDirection, weights and momentum unchanged) and train on: the run ends with
/// the weights of a run that never saw the batch (the independent reference). Hessian-free used to apply its solver's
/// finite start (the previous solution) as the bad batch's step.
/// </summary>
[Collection("Torch")]
public class NonFiniteGradientTests
{
    private const int Batches = 10, BatchSize = 16, BadBatch = 4;

    public static TheoryData<string> Methods => new() { "exact", "tengrad", "hf-cg", "hf-minres", "hf-minres-qlp" };

    private static PreconditionerOptions Options(string method)
    {
        var o = new PreconditionerOptions { Fisher = FisherKind.Exact, Damping = 1e-2 };
        return method switch
        {
            "exact" => o with { Structure = CurvatureStructure.Exact },
            "tengrad" => o with { Structure = CurvatureStructure.Tengrad },
            "hf-cg" => o with { Structure = CurvatureStructure.HessianFree },
            "hf-minres" => o with { Structure = CurvatureStructure.HessianFree, HessianFree = new HessianFreeOptions { Solver = SolverKind.Minres } },
            "hf-minres-qlp" => o with { Structure = CurvatureStructure.HessianFree, HessianFree = new HessianFreeOptions { Solver = SolverKind.MinresQlp } },
            _ => throw new ArgumentException(method),
        };
    }

    private static Module<Tensor, Tensor> Net()
    {
        manual_seed(21);
        return Sequential(("fc0", Linear(4, 8)), ("act0", Tanh()), ("fc1", Linear(8, 1)));
    }

    private static (Tensor X, Tensor Y)[] Data(bool poison)
    {
        manual_seed(22);
        var batches = new (Tensor, Tensor)[Batches];
        for (int b = 0; b < Batches; b++)
        {
            var x = randn(BatchSize, 4);
            batches[b] = (x, x.sum(1, keepdim: true).sin());
        }
        if (poison) batches[BadBatch].Item2[3, 0] = tensor(float.NaN);
        return batches;
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void NanTarget_StepIsSkipped_AndTheRunEqualsOneWithoutIt(string method)
    {
        using var scope = NewDisposeScope();
        List<Tensor> Train(bool poison, bool skipBad, List<NaturalGradient.Diagnostics.StepReport> reports)
        {
            var net = Net();
            using var ngd = new NaturalGradientDescent(net, new GaussianLikelihood(),
                new NaturalGradientOptions { Preconditioner = Options(method), LearningRate = 0.1, Momentum = 0.9 });
            var data = Data(poison);
            for (int b = 0; b < Batches; b++)
            {
                if (skipBad && b == BadBatch) continue;
                using var step = NewDisposeScope();
                reports.Add(ngd.Step(data[b].X, data[b].Y));
            }
            return net.parameters().Select(p => p.detach().clone()).ToList();
        }
        var reports = new List<NaturalGradient.Diagnostics.StepReport>();
        var weights = Train(poison: true, skipBad: false, reports);
        Assert.True(double.IsNaN(reports[BadBatch].Loss));
        Assert.False(reports[BadBatch].Applied, $"{method}: the batch with a NaN target was applied");
        Assert.Equal(StepRejection.NonFiniteDirection, reports[BadBatch].Rejection);
        Assert.All(reports.Where((_, b) => b != BadBatch), r => Assert.True(r.Applied));
        var reference = Train(poison: false, skipBad: true, new());
        for (int i = 0; i < weights.Count; i++)
            TensorAssert.Close(reference[i], weights[i], rtol: 1e-6, label: $"{method} parameter {i}");
    }

    [Theory]
    [InlineData("hf-cg")]
    [InlineData("tengrad")]
    public void Preconditioner_NanTarget_LeavesGradAndReportsTheRejection(string method)
    {
        using var scope = NewDisposeScope();
        var net = Net();
        using var pre = new NaturalGradientPreconditioner(net, new GaussianLikelihood(), Options(method));
        var data = Data(poison: true);
        for (int b = 0; b <= BadBatch; b++)
        {
            net.zero_grad();
            pre.Backward(net.call(data[b].X), data[b].Y);
            var plain = net.parameters().Select(p => p.grad!.clone()).ToList();
            var report = pre.Precondition();
            Assert.Equal(b != BadBatch, report.Applied);
            if (b != BadBatch) continue;
            Assert.Equal(StepRejection.NonFiniteDirection, report.Rejection);
            var grads = net.parameters().Select(p => p.grad!).ToList();
            for (int i = 0; i < grads.Count; i++)
                TensorAssert.Close(plain[i].nan_to_num(), grads[i].nan_to_num(), rtol: 0, label: $".grad {i} is left as the plain gradient");
            Assert.False(FiniteGuard.AllFinite(grads));
        }
    }
}
