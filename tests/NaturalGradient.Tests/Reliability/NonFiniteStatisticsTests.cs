using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// Issue 11 §1.3: float32 4-8-3 tanh, categorical, exact Fisher, λ = 1e-3, 20 batches of 16, one row of batch 6 with a
/// feature of 1e20 (loss and gradient finite, āāᵀ overflows). For every method and inverse method the bad step is
/// skipped, nothing long-lived absorbs a non-finite value, and the 14 batches after it are applied: the run ends with
/// exactly the weights of a run that never saw batch 6 (the independent reference).
/// </summary>
[Collection("Torch")]
public class NonFiniteStatisticsTests
{
    private const int Batches = 20, BatchSize = 16, BadBatch = 5; // batch 6, counted from 1

    public static TheoryData<string> Methods => new()
    {
        "exact", "block", "tengrad", "diag", "kfac-eigen-factored", "kfac-eigen-eigenbasis", "kfac-cholesky", "ekfac", "hf-cg", "hf-minres",
    };

    private static PreconditionerOptions Options(string method)
    {
        var o = new PreconditionerOptions { Fisher = FisherKind.Exact, Damping = 1e-3 };
        return method switch
        {
            "exact" => o with { Structure = CurvatureStructure.Exact },
            "block" => o with { Structure = CurvatureStructure.BlockDiagonal },
            "tengrad" => o with { Structure = CurvatureStructure.Tengrad },
            "diag" => o with { Structure = CurvatureStructure.Diagonal },
            "kfac-eigen-factored" => o with { Structure = CurvatureStructure.Kfac, Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Eigen } },
            "kfac-eigen-eigenbasis" => o with { Structure = CurvatureStructure.Kfac, Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Eigenbasis } },
            "kfac-cholesky" => o with { Structure = CurvatureStructure.Kfac, Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Cholesky } },
            "ekfac" => o with { Structure = CurvatureStructure.Ekfac },
            "hf-cg" => o with { Structure = CurvatureStructure.HessianFree },
            "hf-minres" => o with { Structure = CurvatureStructure.HessianFree, HessianFree = new HessianFreeOptions { Solver = SolverKind.Minres } },
            _ => throw new ArgumentException(method),
        };
    }

    internal static Module<Tensor, Tensor> Net()
    {
        manual_seed(11);
        return Sequential(("fc0", Linear(4, 8, dtype: ScalarType.Float32)), ("act0", Tanh()), ("fc1", Linear(8, 3, dtype: ScalarType.Float32)));
    }

    internal static (Tensor X, Tensor Y)[] Data(bool poison)
    {
        manual_seed(12);
        var batches = new (Tensor, Tensor)[Batches];
        for (int b = 0; b < Batches; b++)
        {
            var x = randn(BatchSize, 4, dtype: ScalarType.Float32);
            var y = randint(0, 3, new long[] { BatchSize }, dtype: ScalarType.Int64);
            batches[b] = (x, y);
        }
        if (poison) batches[BadBatch].Item1[0, 2] = tensor(1e20f);
        return batches;
    }

    private static (List<NaturalGradient.Diagnostics.StepReport> Reports, List<Tensor> Weights) Train(string method, bool poison, bool skipBad)
    {
        var net = Net();
        var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(),
            new NaturalGradientOptions { Preconditioner = Options(method), LearningRate = 0.1, Momentum = 0.9 });
        var reports = new List<NaturalGradient.Diagnostics.StepReport>();
        var data = Data(poison);
        for (int b = 0; b < Batches; b++)
        {
            if (skipBad && b == BadBatch) continue;
            using var step = NewDisposeScope();
            reports.Add(ngd.Step(data[b].X, data[b].Y));
        }
        var weights = net.parameters().Select(p => p.detach().clone()).ToList();
        CheckLongLivedState(ngd);
        ngd.Dispose();
        return (reports, weights);
    }

    /// <summary>K-FAC factors and EKFAC scalings are finite; damping is finite.</summary>
    private static void CheckLongLivedState(NaturalGradientDescent ngd)
    {
        Assert.True(double.IsFinite(ngd.Damping));
        if (ngd.Preconditioner.Curvature is not BlockDiagonalCurvature blocks) return;
        foreach (var layer in ngd.Preconditioner.Layers)
        {
            switch (blocks.Block(layer.Name))
            {
                case KfacBlock k:
                    Assert.True(FiniteGuard.AllFinite(new[] { k.ActivationFactor, k.OutputGradientFactor }), $"K-FAC factors of {layer.Name}");
                    break;
                case EkfacBlock e:
                    Assert.True(FiniteGuard.AllFinite(new[] { e.ActivationFactor, e.OutputGradientFactor, e.Scaling }), $"EKFAC state of {layer.Name}");
                    break;
            }
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void OverflowingBatch_IsSkipped_AndTheRunEqualsOneWithoutIt(string method)
    {
        using var scope = NewDisposeScope();
        var (reports, weights) = Train(method, poison: true, skipBad: false);

        Assert.Equal(Batches, reports.Count);
        Assert.True(double.IsFinite(reports[BadBatch].Loss), "the bad batch's loss is finite: only its second moments overflow");
        Assert.False(reports[BadBatch].Applied);
        Assert.Equal(StepRejection.StatisticsOverflow, reports[BadBatch].Rejection);
        for (int b = 0; b < Batches; b++)
            if (b != BadBatch) Assert.True(reports[b].Applied, $"{method}: batch {b + 1} was not applied ({reports[b].Rejection})");
        Assert.True(FiniteGuard.AllFinite(weights));

        var (_, reference) = Train(method, poison: false, skipBad: true);
        for (int i = 0; i < weights.Count; i++)
            TensorAssert.Close(reference[i], weights[i], rtol: 1e-6, label: $"{method} parameter {i}");
    }

    [Fact]
    public void Preconditioner_OverflowingBatch_LeavesGradAndReportsTheRejection()
    {
        using var scope = NewDisposeScope();
        var net = Net();
        using var pre = new NaturalGradientPreconditioner(net, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-3 });
        var data = Data(poison: true);
        for (int b = 0; b <= BadBatch; b++)
        {
            net.zero_grad();
            pre.Backward(net.call(data[b].X), data[b].Y);
            var plain = net.parameters().Select(p => p.grad!.clone()).ToList();
            var report = pre.Precondition();
            Assert.Equal(b == BadBatch ? StepRejection.StatisticsOverflow : StepRejection.None, report.Rejection);
            Assert.Equal(b != BadBatch, report.Applied);
            Assert.Equal(b == BadBatch, pre.MetricRejected);
            if (b == BadBatch)
                foreach (var (p, g) in net.parameters().Zip(plain)) Assert.True(p.grad!.eq(g).all().item<bool>());
        }
        Assert.Equal(BadBatch, pre.StepCount);   // the rejected batch did not advance the schedules
        var e = Assert.Throws<InvalidOperationException>(() => pre.Solve(pre.GradientMatrices(), 1e-3));
        Assert.Equal("the last metric batch was ignored (its statistics overflow the curvature): skip this step", e.Message);
    }

    /// <summary>
    /// Statistics wide enough for the guard's dot products (Ā of 256 × 201 entries, D of 256 × 150) beside small ones
    /// (D of 256 × 3, taken by norm): the bound equals Σ max(w, 1)‖Ā‖²‖D‖² + ‖Ā‖² + ‖D‖² formed in float64, and a float32
    /// activation of 1e20 (whose square overflows float32) makes it +∞ and rejects the batch.
    /// </summary>
    [Fact]
    public void StatisticsBound_OfWideStatistics_IsTheFloat64BoundAndRejectsAnOverflowingSquare()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 200, 150, 3 }, seed: 3);
        model.to(ScalarType.Float32);
        using var pre = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Empirical, Damping = 1e-3 });
        manual_seed(5);
        var x = randn(256, 200, dtype: ScalarType.Float32);
        var y = randint(0, 3, new long[] { 256 }, dtype: ScalarType.Int64);
        var output = model.call(x);
        pre.Capture.ThrowIfBypassed(output.sum());
        var stats = new FisherEstimator(new CategoricalLikelihood(), FisherKind.Exact).Collect(pre.Capture, pre.Capture.Recorded(), output, y);
        Assert.Contains(stats, s => s.Activations.numel() >= 32768);
        Assert.Contains(stats, s => s.OutputGradients.numel() < 32768);
        double expected = 0;
        foreach (var s in stats)
        {
            double a = s.Activations.to_type(ScalarType.Float64).square().sum().item<double>();
            double d = s.OutputGradients.to_type(ScalarType.Float64).square().sum().item<double>();
            expected += a * d * Math.Max(s.Weight, 1) + a + d;
        }
        Assert.Equal(expected, FiniteGuard.StatisticsBound(stats, output), expected * 1e-5);
        var wide = stats.First(s => s.Activations.numel() >= 32768);
        var poisoned = wide.Activations.clone();
        poisoned[0, 0] = 1e20f;   // finite in float32; its square is not
        var overflowing = stats.Select(s => ReferenceEquals(s, wide) ? new LayerStatistics(s.Adapter, poisoned, s.OutputGradients, s.Weight) : s).ToList();
        Assert.Equal(double.PositiveInfinity, FiniteGuard.StatisticsBound(overflowing, output));
        Assert.False(FiniteGuard.StatisticsAreSafe(overflowing, output));
    }

    /// <summary>The exact-Fisher statistics and output of the first clean batch through <see cref="Net"/> (the preconditioner, for its capture, to dispose).</summary>
    private static (NaturalGradientPreconditioner Preconditioner, Tensor Output, IReadOnlyList<LayerStatistics> Statistics) SmallStatistics()
    {
        var net = Net();
        var pre = new NaturalGradientPreconditioner(net, new CategoricalLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-3 });
        var (x, y) = Data(poison: false)[0];
        var output = net.call(x);
        pre.Capture.ThrowIfBypassed(output.sum());
        return (pre, output, new FisherEstimator(new CategoricalLikelihood(), FisherKind.Exact).Collect(pre.Capture, pre.Capture.Recorded(), output, y));
    }

    [Fact]
    public void StatisticsBound_IsTheCauchySchwarzBoundOfTheLayerNorms()
    {
        using var scope = NewDisposeScope();
        var (pre, output, stats) = SmallStatistics();
        using var _ = pre;
        double expected = 0;
        foreach (var s in stats)
        {
            double a = s.Activations.to_type(ScalarType.Float64).square().sum().item<double>();
            double d = s.OutputGradients.to_type(ScalarType.Float64).square().sum().item<double>();
            expected += a * d * Math.Max(s.Weight, 1) + a + d;
            // Every entry of the dense block w JᵀJ is within the bound.
            var j = s.PerSampleGradients().reshape(s.SampleCount, -1).to_type(ScalarType.Float64);
            Assert.True(j.t().mm(j).mul(s.Weight).abs().max().item<double>() <= a * d * Math.Max(s.Weight, 1));
        }
        Assert.Equal(expected, FiniteGuard.StatisticsBound(stats, output), expected * 1e-5);
        Assert.True(FiniteGuard.StatisticsAreSafe(stats, output));
    }

    /// <summary>
    /// Small statistics (the guard sums them on the host in float64, no operator call): a float32 activation of 1e20,
    /// whose square overflows float32 but not float64, gives the finite float64 bound, far above the headroom, and the
    /// batch is rejected; a NaN activation gives NaN; an infinite output gives NaN; a non-contiguous view is summed by
    /// the tensor reductions and gives the same bound as its contiguous copy.
    /// </summary>
    [Fact]
    public void StatisticsBound_OfSmallStatistics_IsTheFloat64Bound_AndRejectsOverflowNaNAndInfiniteOutputs()
    {
        using var scope = NewDisposeScope();
        var (pre, output, stats) = SmallStatistics();
        using var _ = pre;
        Assert.All(stats, s => Assert.True(s.Activations.numel() < 32768 && s.Activations.dtype == ScalarType.Float32));

        double Bound(IReadOnlyList<LayerStatistics> list) => list.Sum(s =>
        {
            double a = s.Activations.to_type(ScalarType.Float64).square().sum().item<double>();
            double d = s.OutputGradients.to_type(ScalarType.Float64).square().sum().item<double>();
            return a * d * Math.Max(s.Weight, 1) + a + d;
        });
        List<LayerStatistics> With(Tensor activations) =>
            stats.Select((s, i) => i == 0 ? new LayerStatistics(s.Adapter, activations, s.OutputGradients, s.Weight) : s).ToList();

        var poisoned = stats[0].Activations.clone();
        poisoned.view(-1)[0] = 1e20f;
        var overflowing = With(poisoned);
        double expected = Bound(overflowing);
        Assert.True(double.IsFinite(expected) && expected > 1e40);
        Assert.Equal(expected, FiniteGuard.StatisticsBound(overflowing, output), expected * 1e-6);
        Assert.False(FiniteGuard.StatisticsAreSafe(overflowing, output));

        var nan = stats[0].Activations.clone();
        nan.view(-1)[7] = float.NaN;
        Assert.True(double.IsNaN(FiniteGuard.StatisticsBound(With(nan), output)));
        var infiniteOutput = output.detach().clone();
        infiniteOutput.view(-1)[0] = float.PositiveInfinity;
        Assert.True(double.IsNaN(FiniteGuard.StatisticsBound(stats, infiniteOutput)));

        var a0 = stats[0].Activations;
        var strided = cat(new[] { a0, a0 }, -1).narrow(-1, 0, a0.size(-1));   // the same values, not contiguous
        Assert.False(strided.is_contiguous());
        Assert.Equal(FiniteGuard.StatisticsBound(stats, output), FiniteGuard.StatisticsBound(With(strided), output), Bound(stats) * 1e-6);
    }

    [Fact]
    public void SafeCholesky_InfiniteMatrix_EndsAtOnceWithOneLine()
    {
        using var scope = NewDisposeScope();
        var a = eye(4, dtype: ScalarType.Float32);
        a[1, 1] = tensor(float.PositiveInfinity);
        var e = Assert.Throws<NonFiniteMatrixException>(() => SafeCholesky.Factor(a));
        Assert.Equal("a 4×4 matrix to factor holds ∞ or NaN; the statistics it was built from overflowed (scale the inputs, or use a float64 model)", e.Message);
        Assert.Throws<NonFiniteMatrixException>(() => SafeCholesky.Solve(a, ones(4, dtype: ScalarType.Float32)));
        a[1, 1] = tensor(float.NaN);
        Assert.Throws<NonFiniteMatrixException>(() => SafeCholesky.Solve(a, ones(4, dtype: ScalarType.Float32)));
    }

    [Fact]
    public void SafeCholesky_IndefiniteMatrix_StopsAfterTheBoundedJitterLadderAndFallsBackToEigh()
    {
        using var scope = NewDisposeScope();
        var a = diag(tensor(new[] { 1.0, -1.0 }));
        var e = Assert.Throws<CholeskyFailedException>(() => SafeCholesky.Factor(a));
        Assert.Equal("Cholesky failed for a 2×2 matrix even with jitter 1.00E-002; increase the damping", e.Message);
        // Solve's last resort clamps the negative eigenvalue at 1e-12 · max: x = (1, 1e12) for b = (1, 1).
        var x = SafeCholesky.Solve(a, ones(2, dtype: ScalarType.Float64));
        Assert.Equal(1.0, x[0].item<double>(), 12);
        Assert.Equal(1e12, x[1].item<double>(), 0);
    }
}
