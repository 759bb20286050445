using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Damping;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// The lean step keeps the math: statistics from the single backward pass, the predicted KL only when asked for,
/// cheaper quadratic forms, in-place buffers, and float32 factorisations that fall back to float64.
/// </summary>
[Collection("Torch")]
public class LeanStepTests
{
    private static nn.Module<Tensor, Tensor> Conv()
    {
        manual_seed(5);
        return nn.Sequential(("conv", nn.Conv2d(2, 3, 3, padding: 1)), ("tanh", nn.Tanh()), ("flat", nn.Flatten()), ("fc", nn.Linear(3 * 5 * 5, 4)))
            .to(ScalarType.Float64);
    }

    public static TheoryData<string, string> Models => new()
    {
        { "mlp", "categorical" }, { "mlp", "gaussian" }, { "mlp", "bernoulli" }, { "conv", "categorical" },
    };

    [Theory]
    [MemberData(nameof(Models))]
    public void EmpiricalFisher_FromTheLossBackward_EqualsTheSeparatePerExamplePass(string model, string likelihood)
    {
        using var scope = NewDisposeScope();
        var net = model == "mlp" ? TestModels.Mlp(new[] { 4, 6, 5, 4 }, seed: 3) : Conv();
        var x = model == "mlp" ? TestModels.Inputs(7, 4, seed: 4) : randn(7, 2, 5, 5, dtype: ScalarType.Float64);
        manual_seed(6);
        var lik = Likelihood.Create(likelihood switch { "gaussian" => LikelihoodKind.Gaussian, "bernoulli" => LikelihoodKind.Bernoulli, _ => LikelihoodKind.Categorical });
        Tensor y = likelihood switch
        {
            "gaussian" => randn(7, 4, dtype: ScalarType.Float64),
            "bernoulli" => randint(0, 2, new long[] { 7, 4 }).to_type(ScalarType.Float64),
            _ => randint(0, 4, new long[] { 7 }),
        };
        using var capture = new LayerCapture(net);

        // Two passes (the reference): backpropagate Σᵢ ℓᵢ to the layer outputs, separately from the loss.
        var output = net.call(x);
        var recorded = capture.Recorded();
        var twoPass = new FisherEstimator(lik).Collect(capture, recorded, output, y);

        // One pass: the loss's own backward, with the layer outputs' gradients retained.
        capture.Clear();
        net.zero_grad();
        output = net.call(x);
        recorded = capture.Recorded();
        FisherEstimator.RetainOutputGradients(recorded);
        lik.Loss(output, y).backward();
        var onePass = FisherEstimator.CollectFromLossGradients(recorded, 7);

        Assert.Equal(twoPass.Count, onePass.Count);
        for (int l = 0; l < twoPass.Count; l++)
        {
            Assert.Equal(twoPass[l].Weight, onePass[l].Weight);
            TensorAssert.Close(twoPass[l].Activations, onePass[l].Activations, rtol: 0, label: $"ā, layer {l}");
            TensorAssert.Close(twoPass[l].OutputGradients, onePass[l].OutputGradients, rtol: 1e-12, label: $"δ, layer {l}");
        }
    }

    private static (nn.Module<Tensor, Tensor>, Tensor, Tensor) Classification()
    {
        var model = TestModels.Mlp(new[] { 4, 8, 3 }, seed: 2);
        var x = TestModels.Inputs(16, 4, seed: 3);
        manual_seed(4);
        return (model, x, randint(0, 3, new long[] { 16 }));
    }

    [Fact]
    public void PredictedKl_IsNotComputedUnlessAStepFormKlClipOrLevenbergMarquardtOrTheReportAsksForIt()
    {
        using var scope = NewDisposeScope();
        // Hessian-free counts its metric products: the solve's, plus one per step for ½uᵀGu when it is computed.
        long Products(bool clip, bool report, DampingSchedule schedule, out double predictedKl)
        {
            var (model, x, y) = Classification();
            using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
            {
                LearningRate = 0.1, KlClip = clip ? 1e30 : null, KlClipForm = KlClipForm.StepQuadraticForm, ReportPredictedKl = report, DampingSchedule = schedule,
                Preconditioner = new PreconditionerOptions
                {
                    Structure = CurvatureStructure.HessianFree, Damping = 1e-2,
                    HessianFree = new HessianFreeOptions { MaxIterations = 3, WarmStart = false },
                },
            });
            predictedKl = double.NaN;
            for (int s = 0; s < 4; s++)
            {
                using var step = NewDisposeScope();
                predictedKl = ngd.Step(x, y).PredictedKl;
            }
            return ((HessianFreeCurvature)ngd.Preconditioner.Curvature).TotalProducts;
        }

        long plain = Products(false, false, DampingSchedule.Constant, out var klPlain);
        long clipped = Products(true, false, DampingSchedule.Constant, out var klClipped);
        long reported = Products(false, true, DampingSchedule.Constant, out var klReported);
        Assert.True(double.IsNaN(klPlain), $"predicted KL {klPlain} computed without being asked for");
        Assert.Equal(plain + 4, clipped);
        Assert.Equal(plain + 4, reported);
        Assert.True(klClipped > 0 && klClipped == klReported, $"{klClipped} vs {klReported}");
        Products(false, false, DampingSchedule.LevenbergMarquardt, out var klLm);
        Assert.True(klLm > 0);
    }

    /// <summary>η ≤ 1 adds −η · the candidate into the weights in one fused op; η > 1 forms the step first.</summary>
    [Theory]
    [InlineData(0.3)]
    [InlineData(3.0)]
    public void ReportedPredictedKl_IsHalfUTransposeMU_OfTheAppliedStep(double learningRate)
    {
        using var scope = NewDisposeScope();
        foreach (var structure in new[] { CurvatureStructure.Tengrad, CurvatureStructure.Kfac, CurvatureStructure.BlockDiagonal })
        {
            var (model, x, y) = Classification();
            using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), new NaturalGradientOptions
            {
                LearningRate = learningRate, ReportPredictedKl = true,
                Preconditioner = new PreconditionerOptions { Structure = structure, Damping = 1e-2, HessianFree = new HessianFreeOptions { MaxIterations = 3 } },
            });
            var layers = ngd.Preconditioner.Capture.Layers.Select(l => l.Adapter).ToList();
            var before = layers.Select(l => l.WeightMatrix()).ToList();
            var report = ngd.Step(x, y);
            var u = layers.Select((l, i) => l.WeightMatrix() - before[i]).ToList();
            var mu = ngd.Preconditioner.Curvature.Multiply(layers, u);
            double expected = 0.5 * u.Select((t, i) => (t * mu[i]).sum().item<double>()).Sum();
            Assert.True(Math.Abs(report.PredictedKl - expected) <= 1e-10 * Math.Abs(expected), $"{structure}: {report.PredictedKl} vs {expected}");
        }
    }

    [Fact]
    public void FiniteCheck_SumsInTheTensorsDtype_AndAllFiniteConfirmsAnOverflowingSumEntryByEntry()
    {
        using var scope = NewDisposeScope();
        var large = full(new long[] { 4, 3 }, 3e38f, dtype: ScalarType.Float32);   // finite entries, float32 sum overflows
        Assert.False(double.IsFinite(NaturalGradientPreconditioner.FiniteCheck(new[] { large }).item<double>()));
        Assert.True(NaturalGradientPreconditioner.AllFinite(new[] { large, ones(3) }));
        foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
        {
            var t = ones(5, dtype: ScalarType.Float32);
            t[2] = tensor(bad);
            Assert.False(NaturalGradientPreconditioner.AllFinite(new[] { ones(3), t }));
            Assert.False(NaturalGradientPreconditioner.AllFinite(new[] { large, t }));
        }
        Assert.Equal(6.0, NaturalGradientPreconditioner.FiniteCheck(new[] { ones(2, 2), full(2, 1.0, dtype: ScalarType.Float64) }).item<double>());
    }

    [Fact]
    public void Tengrad_QuadraticForm_EqualsVTransposeMV()
    {
        using var scope = NewDisposeScope();
        var layer = new LinearAdapter("fc", nn.Linear(5, 3).to(ScalarType.Float64));
        manual_seed(9);
        var stats = new LayerStatistics(layer, cat(new[] { randn(8, 1, 5, dtype: ScalarType.Float64), ones(8, 1, 1, dtype: ScalarType.Float64) }, 2),
            randn(1, 8, 1, 3, dtype: ScalarType.Float64), 1.0 / 8);
        foreach (var form in new[] { MetricForm.Uncentered, MetricForm.Centered })
        {
            using var block = new TengradBlock(form);
            block.Update(stats, 0);
            var v = randn(3, 6, dtype: ScalarType.Float64);
            double expected = v.flatten().dot(block.ToDense().mv(v.flatten())).item<double>();
            Assert.Equal(expected, block.QuadraticForm(v).item<double>(), 1e-10 * Math.Abs(expected));
        }
    }

    /// <summary>A symmetric positive definite matrix with integer entries (exact in float32), det 1 and condition ≈ 16n⁴ (2.6·10¹⁴ at n = 2000).</summary>
    private static Tensor IllConditioned(int n)
    {
        var b = tensor(new double[] { n, n - 1, n - 1, n - 2 }, 2, 2);       // det B = −1
        return b.mm(b.t());                                                   // det = 1, entries < 2²⁴
    }

    [Fact]
    public void Float32Cholesky_ThatFails_IsRetriedInFloat64()
    {
        using var scope = NewDisposeScope();
        var a64 = IllConditioned(2000);
        var a32 = a64.to_type(ScalarType.Float32);
        Assert.True(a32.to_type(ScalarType.Float64).eq(a64).all().item<bool>(), "the matrix must be exact in float32");
        var (_, info) = linalg.cholesky_ex(a32);
        Assert.NotEqual(0, info.item<int>());                                 // float32 alone fails…
        var b = tensor(new[] { 1.0, -2.0 });
        var x = SafeCholesky.Solve(a32, b.to_type(ScalarType.Float32));
        Assert.Equal(ScalarType.Float32, x.dtype);
        // …and the whole solve is redone in float64: the float64 Cholesky solve of the same matrix, rounded to float32
        // (a float64 factor rounded back to float32 before the solve was 3e-3 off on an AVX-512 CPU).
        var retried = cholesky_solve(b.unsqueeze(1), linalg.cholesky(a64)).squeeze(1);
        TensorAssert.Close(retried, x.to_type(ScalarType.Float64), rtol: 1e-6);
        // Independently, LU with pivoting: κ ≈ 2.6e14 here, so float64 solvers agree only to about κ·ε ≈ 6e-2.
        TensorAssert.Close(linalg.solve(a64, b), x.to_type(ScalarType.Float64), rtol: 6e-2);
    }

    /// <summary>
    /// A batch of matrices is one attempt: factored in float32 when every matrix factors (info read through any()), else
    /// all retried in float64; a NaN ends in NonFiniteMatrixException, whether Cholesky flags it or the factor's sum shows it.
    /// </summary>
    [Fact]
    public void SafeCholesky_Batch_IsRetriedInFloat64WhenOneMatrixFails()
    {
        using var scope = NewDisposeScope();
        var good = tensor(new[] { 4.0, 2.0, 2.0, 3.0 }, 2, 2);
        var passing = stack(new[] { good, good.mul(2) }).to_type(ScalarType.Float32);
        var l = SafeCholesky.Factor(passing);
        Assert.Equal(ScalarType.Float32, l.dtype);
        TensorAssert.Close(passing.to_type(ScalarType.Float64), l.matmul(l.transpose(-2, -1)).to_type(ScalarType.Float64), rtol: 1e-6);

        var a64 = stack(new[] { good, IllConditioned(2000) });
        var failing = a64.to_type(ScalarType.Float32);
        Assert.NotEqual(0, linalg.cholesky_ex(failing).info.ne(0).sum().item<long>());    // float32 fails on the second
        var retried = SafeCholesky.Factor(failing);
        Assert.Equal(ScalarType.Float64, retried.dtype);
        TensorAssert.Close(linalg.cholesky(a64), retried, rtol: 1e-9);

        var nan = eye(3, dtype: ScalarType.Float32);
        nan[2, 0] = tensor(float.NaN);
        nan[0, 2] = tensor(float.NaN);
        Assert.Throws<NonFiniteMatrixException>(() => SafeCholesky.Factor(nan));
    }

    [Fact]
    public void Float32Kfac_Eigen_MatchesTheFloat64Block()
    {
        using var scope = NewDisposeScope();
        var linear = nn.Linear(6, 4);
        var layer = new LinearAdapter("fc", linear);
        manual_seed(3);
        var a = cat(new[] { randn(32, 1, 6, dtype: ScalarType.Float64), ones(32, 1, 1, dtype: ScalarType.Float64) }, 2);
        var d = randn(1, 32, 1, 4, dtype: ScalarType.Float64);
        var g = randn(4, 7, dtype: ScalarType.Float64);
        foreach (var method in new[] { KfacInverseMethod.Eigen, KfacInverseMethod.Cholesky })
        {
            var options = new KfacOptions { InverseMethod = method };
            using var b64 = new KfacBlock(layer, options);
            using var b32 = new KfacBlock(layer, options);
            b64.Update(new LayerStatistics(layer, a, d, 1.0 / 32), 0);
            b32.Update(new LayerStatistics(layer, a.to_type(ScalarType.Float32), d.to_type(ScalarType.Float32), 1.0 / 32), 0);
            var r32 = b32.Precondition(g.to_type(ScalarType.Float32), 1e-2);
            Assert.Equal(ScalarType.Float32, r32.dtype);
            Assert.Equal(ScalarType.Float32, b32.ActivationFactor.dtype);
            TensorAssert.Close(b64.Precondition(g, 1e-2), r32.to_type(ScalarType.Float64), rtol: 1e-4, label: method.ToString());
        }
    }

    [Fact]
    public void EigenKfac_FactoredDamping_CachesItsInversesUntilTheDampingChanges()
    {
        using var scope = NewDisposeScope();
        var layer = new LinearAdapter("fc", nn.Linear(5, 3).to(ScalarType.Float64));
        manual_seed(2);
        var stats = new LayerStatistics(layer, cat(new[] { randn(10, 1, 5, dtype: ScalarType.Float64), ones(10, 1, 1, dtype: ScalarType.Float64) }, 2),
            randn(1, 10, 1, 3, dtype: ScalarType.Float64), 0.1);
        using var block = new KfacBlock(layer, new KfacOptions { InverseMethod = KfacInverseMethod.Eigen });
        block.Update(stats, 0);
        var g = randn(3, 6, dtype: ScalarType.Float64);
        var a = block.ActivationFactor;
        var gf = block.OutputGradientFactor;
        foreach (double damping in new[] { 1e-2, 1e-2, 0.5, 1e-2 })
        {
            double pi = FactoredDamping.Pi(a, gf);
            var (sa, sg) = FactoredDamping.Shifts(pi, damping);
            var expected = linalg.solve(gf + sg * eye(3, dtype: ScalarType.Float64), g).mm(linalg.inv(a + sa * eye(6, dtype: ScalarType.Float64)));
            TensorAssert.Close(expected, block.Precondition(g, damping), rtol: 1e-10, label: $"λ = {damping}");
        }
        Assert.Equal(1, block.InverseRefreshCount);   // one eigendecomposition for every damping
    }
}
