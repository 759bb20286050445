using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>(e) Running averages and the factor / inverse update periods behave as <see cref="KfacOptions"/> documents.</summary>
[Collection("Torch")]
public class KfacScheduleTests
{
    private const int M = 6;
    private const double Damping = 0.05;

    /// <summary>Factors every step: the tests of the running averages and inverse periods absorb every update they make.</summary>
    private static readonly KfacOptions EveryStep = new() { FactorUpdatePeriod = 1 };

    /// <summary>The first layer of an MLP and its statistics on two different batches.</summary>
    private static (ILayerAdapter Layer, LayerStatistics First, LayerStatistics Second) TwoBatches()
    {
        var model = TestModels.Mlp(new[] { 4, 5, 3 });
        var likelihood = new CategoricalLikelihood();
        var (layers, first) = Collect(model, TestModels.Inputs(M, 4, seed: 1), Labels(M, 3, seed: 2), likelihood);
        var (_, second) = Collect(model, TestModels.Inputs(M, 4, seed: 7) * 2 + 0.5, Labels(M, 3, seed: 8), likelihood);
        return (layers[0], first[0], second[0]);
    }

    private static KfacBlock Kfac(ILayerAdapter layer, LayerStatistics statistics, KfacOptions? options = null)
    {
        var block = new KfacBlock(layer, options);
        block.Update(statistics, 0);
        return block;
    }

    [Theory]
    [InlineData(0.7)]
    [InlineData(0.0)]
    public void RunningAverage_AfterTwoUpdates_IsDecayWeightedSumOfBatchFactors(double decay)
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        using var one = Kfac(layer, first);
        using var two = Kfac(layer, second);
        using var both = Kfac(layer, first, new KfacOptions { FactorDecay = decay, FactorUpdatePeriod = 1 });
        both.Update(second, 1);
        TensorAssert.Close(decay * one.ActivationFactor + (1 - decay) * two.ActivationFactor, both.ActivationFactor, rtol: 1e-13, label: "A");
        TensorAssert.Close(decay * one.OutputGradientFactor + (1 - decay) * two.OutputGradientFactor, both.OutputGradientFactor, rtol: 1e-13, label: "G");
    }

    /// <summary>Float32 factors are accumulated in place by one GEMM (addmm with β and (1 − β)c): same average as the float64 reference.</summary>
    [Theory]
    [InlineData(0.7)]
    [InlineData(0.95)]
    public void RunningAverage_Float32_InPlaceGemm_MatchesFloat64Reference(double decay)
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        using var one = Kfac(layer, first);
        using var two = Kfac(layer, second);
        using var both = Kfac(layer, Float32(first), new KfacOptions { FactorDecay = decay, FactorUpdatePeriod = 1 });
        both.Update(Float32(second), 1);
        both.Update(Float32(first), 2);
        Assert.Equal(ScalarType.Float32, both.ActivationFactor.dtype);
        var expectedA = (decay * (decay * one.ActivationFactor + (1 - decay) * two.ActivationFactor) + (1 - decay) * one.ActivationFactor);
        var expectedG = (decay * (decay * one.OutputGradientFactor + (1 - decay) * two.OutputGradientFactor) + (1 - decay) * one.OutputGradientFactor);
        TensorAssert.Close(expectedA, both.ActivationFactor.to_type(ScalarType.Float64), rtol: 1e-5, label: "A");
        TensorAssert.Close(expectedG, both.OutputGradientFactor.to_type(ScalarType.Float64), rtol: 1e-5, label: "G");
    }

    /// <summary>
    /// Wide float32 factors (from <see cref="RunningAverage.SymmetricSplitDimension"/> on) accumulate as a symmetric
    /// matrix by 2 × 2 blocks: the same average as the float64 formula β X + (1 − β) c LᵀL, with off-diagonal blocks
    /// that are exact transposes of each other, for even and odd widths.
    /// </summary>
    [Theory]
    [InlineData(384)]
    [InlineData(785)]
    public void RunningAverage_WideGram_AccumulatesAsSymmetricBlocks(int width)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(7);
        var first = randn(new long[] { 96, width }, dtype: ScalarType.Float64, generator: gen);
        var second = randn(new long[] { 96, width }, dtype: ScalarType.Float64, generator: gen).add_(0.5);
        const double decay = 0.9, scale = 1.0 / 96;
        using var average = new RunningAverage();
        var f32 = first.to_type(ScalarType.Float32);
        average.Update(f32.t().mm(f32).mul_(scale), decay);
        var rows = second.to_type(ScalarType.Float32);
        Assert.True(average.TryAccumulateGram(rows, rows, scale, decay));
        var expected = first.t().mm(first).mul(decay * scale) + second.t().mm(second).mul((1 - decay) * scale);
        var value = average.Value!;
        TensorAssert.Close(expected, value.to_type(ScalarType.Float64), rtol: 1e-5, label: "X");
        long h = width / 2;
        Assert.True(value.narrow(0, h, width - h).narrow(1, 0, h).eq(value.narrow(0, 0, h).narrow(1, h, width - h).t()).all().item<bool>(),
            "the off-diagonal blocks are exact transposes");
    }

    /// <summary>
    /// bfloat16 factor GEMMs (<see cref="KfacFactorPrecision.Bfloat16"/>): the float32 average stays within the bfloat16
    /// rounding of the float64 formula (relative Frobenius error below 1e-2; measured about 3e-3 for one batch), for a
    /// Gram and for EKFAC's product of two different matrices.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RunningAverage_BFloat16Products_StayWithinTheirRounding(bool gram)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var left = randn(new long[] { 128, 300 }, dtype: ScalarType.Float64, generator: gen);
        var right = gram ? left : rand(new long[] { 128, 200 }, dtype: ScalarType.Float64, generator: gen);
        var start = randn(new long[] { 300, gram ? 300 : 200 }, dtype: ScalarType.Float64, generator: gen);
        const double decay = 0.8, scale = 1.0 / 128;
        using var average = new RunningAverage();
        average.Update(start.to_type(ScalarType.Float32), decay);
        var l32 = left.to_type(ScalarType.Float32);
        Assert.True(average.TryAccumulateGram(l32, gram ? l32 : right.to_type(ScalarType.Float32), scale, decay, KfacFactorPrecision.Bfloat16));
        var expected = start * decay + left.t().mm(right).mul((1 - decay) * scale);
        double error = (average.Value!.to_type(ScalarType.Float64) - expected).norm().item<double>() / expected.norm().item<double>();
        Assert.InRange(error, 1e-5, 1e-2);   // bfloat16's rounding is visible, and bounded
    }

    /// <summary>
    /// K-FAC with bfloat16 factor GEMMs: factors within 1e-2 of the float32 ones and the preconditioned gradient within
    /// 2e-2 after two updates; float64 statistics ignore the setting (identical factors).
    /// </summary>
    [Fact]
    public void Kfac_BFloat16Factors_CloseToFloat32_AndIgnoredForFloat64()
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        var low = new KfacOptions { FactorPrecision = KfacFactorPrecision.Bfloat16, FactorUpdatePeriod = 1 };
        using var f32 = Kfac(layer, Float32(first), EveryStep);
        using var bf16 = Kfac(layer, Float32(first), low);
        f32.Update(Float32(second), 1);
        bf16.Update(Float32(second), 1);
        double Relative(Tensor a, Tensor b) => (a - b).norm().item<float>() / b.norm().item<float>();
        Assert.True(Relative(bf16.ActivationFactor, f32.ActivationFactor) < 1e-2, "A");
        Assert.True(Relative(bf16.OutputGradientFactor, f32.OutputGradientFactor) < 1e-2, "G");
        var gradient = second.PerSampleGradients().sum(dim: 0).to_type(ScalarType.Float32);
        Assert.True(Relative(bf16.Precondition(gradient, 0.01), f32.Precondition(gradient, 0.01)) < 2e-2, "Δ");

        using var f64 = Kfac(layer, first, EveryStep);
        using var f64Low = Kfac(layer, first, low);
        f64.Update(second, 1);
        f64Low.Update(second, 1);
        Assert.True(f64Low.ActivationFactor.eq(f64.ActivationFactor).all().item<bool>());
        Assert.True(f64Low.OutputGradientFactor.eq(f64.OutputGradientFactor).all().item<bool>());
    }

    /// <summary>EKFAC's float32 scaling S accumulates in place by one GEMM in the fixed basis: same as the float64 formula.</summary>
    [Fact]
    public void Ekfac_RunningAverage_Float32_OfScalingMatchesFloat64Formula()
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        const double decay = 0.6;
        using var block = new EkfacBlock(layer, new KfacOptions { FactorDecay = decay, FactorUpdatePeriod = 1, InverseUpdatePeriod = 100 });
        block.Update(Float32(first), 0);
        var s1 = block.Scaling.to_type(ScalarType.Float64);
        block.Update(Float32(second), 1);
        Assert.Equal(ScalarType.Float32, block.Scaling.dtype);
        var qg = block.OutputGradientBasis.to_type(ScalarType.Float64);
        var qa = block.ActivationBasis.to_type(ScalarType.Float64);
        var s2 = qg.t().matmul(second.PerSampleGradients()).matmul(qa).square().sum(new long[] { 0 }).mul(second.Weight);
        TensorAssert.Close(decay * s1 + (1 - decay) * s2, block.Scaling.to_type(ScalarType.Float64), rtol: 1e-5, label: "S");
    }

    [Fact]
    public void Ekfac_RunningAverage_OfScalingIsDecayWeightedSumInTheFixedBasis()
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        const double decay = 0.6;
        using var block = new EkfacBlock(layer, new KfacOptions { FactorDecay = decay, FactorUpdatePeriod = 1, InverseUpdatePeriod = 100 });
        block.Update(first, 0);
        var s1 = block.Scaling.clone();
        block.Update(second, 1);
        Assert.Equal(1, block.InverseRefreshCount);
        var s2 = block.OutputGradientBasis.t().matmul(second.PerSampleGradients()).matmul(block.ActivationBasis)
            .square().sum(new long[] { 0 }).mul(second.Weight);
        TensorAssert.Close(decay * s1 + (1 - decay) * s2, block.Scaling, rtol: 1e-12, label: "S");
    }

    [Fact]
    public void FactorUpdatePeriod_AbsorbsStatisticsOnlyOnPeriodSteps()
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        const double decay = 0.5;
        var options = new KfacOptions { FactorDecay = decay, FactorUpdatePeriod = 2 };
        using var one = Kfac(layer, first);
        using var two = Kfac(layer, second);
        using var kfac = Kfac(layer, first, options);
        using var ekfac = new EkfacBlock(layer, options);
        ekfac.Update(first, 0);
        var s0 = ekfac.Scaling.clone();

        kfac.Update(second, 1);                                      // 1 mod 2 ≠ 0: skipped
        ekfac.Update(second, 1);
        TensorAssert.Close(one.ActivationFactor, kfac.ActivationFactor, rtol: 0, label: "A after a skipped step");
        TensorAssert.Close(one.OutputGradientFactor, kfac.OutputGradientFactor, rtol: 0, label: "G after a skipped step");
        TensorAssert.Close(s0, ekfac.Scaling, rtol: 0, label: "S after a skipped step");

        kfac.Update(second, 2);
        TensorAssert.Close(decay * one.ActivationFactor + (1 - decay) * two.ActivationFactor, kfac.ActivationFactor, rtol: 1e-13, label: "A at step 2");
    }

    [Theory]
    [InlineData("kfac-eigen-factored")]
    [InlineData("kfac-eigen-eigenbasis")]
    [InlineData("kfac-cholesky-factored")]
    public void InverseUpdatePeriod_KeepsTheCachedInverseBetweenPeriods(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        var options = new KfacOptions { FactorDecay = 0.5, FactorUpdatePeriod = 1, InverseUpdatePeriod = 3 };
        var block = (KfacBlock)CreateBlock(configuration, layer, options);
        var everyStep = (KfacBlock)CreateBlock(configuration, layer, options with { InverseUpdatePeriod = 1 });
        using var _ = block;
        using var __ = everyStep;
        var v = RandomMatrix(layer, 3);

        block.Update(first, 0);
        everyStep.Update(first, 0);
        var p0 = block.Precondition(v, Damping);
        Assert.Equal(1, block.InverseRefreshCount);

        for (long step = 1; step <= 2; step++)
        {
            block.Update(step % 2 == 1 ? second : first, step);
            everyStep.Update(step % 2 == 1 ? second : first, step);
            TensorAssert.Close(p0, block.Precondition(v, Damping), rtol: 0, label: $"step {step}: cached inverse");
            TensorAssert.Close(everyStep.Multiply(v), block.Multiply(v), rtol: 1e-13, label: $"step {step}: Multiply uses the current factors");
            Assert.True(TensorAssert.RelativeError(everyStep.Precondition(v, Damping), p0) > 1e-3, "the factors must have changed");
            Assert.Equal(1, block.InverseRefreshCount);
        }

        block.Update(second, 3);
        everyStep.Update(second, 3);
        TensorAssert.Close(everyStep.Precondition(v, Damping), block.Precondition(v, Damping), rtol: 1e-12, label: "step 3: refreshed");
        Assert.Equal(2, block.InverseRefreshCount);
    }

    [Fact]
    public void Ekfac_InverseUpdatePeriod_KeepsTheEigenbasisBetweenPeriods()
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        using var block = new EkfacBlock(layer, new KfacOptions { FactorUpdatePeriod = 1, InverseUpdatePeriod = 2 });
        block.Update(first, 0);
        var qa = block.ActivationBasis.clone();
        block.Update(second, 1);
        Assert.Equal(1, block.InverseRefreshCount);
        TensorAssert.Close(qa, block.ActivationBasis, rtol: 0, label: "Q_A between periods");
        block.Update(second, 2);
        Assert.Equal(2, block.InverseRefreshCount);
        Assert.True(TensorAssert.RelativeError(qa.abs(), block.ActivationBasis.abs()) > 1e-6, "the basis must be recomputed at step 2");
    }

    /// <summary>Without an InverseUpdatePeriod each block takes its own: K-FAC refreshes at steps 0, 10, 20; EKFAC's
    /// eigenbasis at 0 and 20 only; a period that is given is kept by both.</summary>
    [Fact]
    public void DefaultInversePeriod_IsTenForKfac_AndTwentyForEkfac()
    {
        using var scope = NewDisposeScope();
        var (layer, first, second) = TwoBatches();
        using var kfac = new KfacBlock(layer, new KfacOptions { FactorUpdatePeriod = 1 });
        using var ekfac = new EkfacBlock(layer, new KfacOptions { FactorUpdatePeriod = 1 });
        using var ekfacTen = new EkfacBlock(layer, new KfacOptions { FactorUpdatePeriod = 1, InverseUpdatePeriod = 10 });
        Assert.Equal(10, kfac.Options.InverseUpdatePeriod);
        Assert.Equal(20, ekfac.Options.InverseUpdatePeriod);
        Assert.Equal(10, ekfacTen.Options.InverseUpdatePeriod);
        var v = RandomMatrix(layer, 4);
        var refreshes = new List<(int Kfac, int Ekfac, int EkfacTen)>();
        for (int step = 0; step <= 20; step++)
        {
            var batch = step % 2 == 0 ? first : second;
            kfac.Update(batch, step);
            ekfac.Update(batch, step);
            ekfacTen.Update(batch, step);
            kfac.Precondition(v, Damping);   // K-FAC builds its damped inverses on first use
            refreshes.Add((kfac.InverseRefreshCount, ekfac.InverseRefreshCount, ekfacTen.InverseRefreshCount));
        }
        Assert.Equal((1, 1, 1), refreshes[9]);
        Assert.Equal((2, 1, 2), refreshes[10]);
        Assert.Equal((2, 1, 2), refreshes[19]);
        Assert.Equal((3, 2, 3), refreshes[20]);
    }

    [Theory]
    [InlineData(KfacInverseMethod.Cholesky, 2)]
    [InlineData(KfacInverseMethod.Eigen, 1)]
    public void DampingChange_RebuildsOnlyDampingDependentInverses(KfacInverseMethod method, int expectedRefreshes)
    {
        using var scope = NewDisposeScope();
        var (layer, first, _) = TwoBatches();
        using var block = Kfac(layer, first, new KfacOptions { InverseMethod = method, InverseUpdatePeriod = 100 });
        using var reference = Kfac(layer, first, new KfacOptions { InverseMethod = method });
        var v = RandomMatrix(layer, 4);
        block.Precondition(v, 0.1);
        block.Precondition(v, 0.1);
        var changed = block.Precondition(v, 0.01);
        Assert.Equal(expectedRefreshes, block.InverseRefreshCount);
        TensorAssert.Close(reference.Precondition(v, 0.01), changed, rtol: 1e-12, label: "after the damping change");
    }

    [Fact]
    public void FirstUpdate_InitialisesWhateverTheStep()
    {
        using var scope = NewDisposeScope();
        var (layer, first, _) = TwoBatches();
        var options = new KfacOptions { FactorUpdatePeriod = 4, InverseUpdatePeriod = 4 };
        foreach (var configuration in Configurations)
        {
            using var block = CreateBlock(configuration, layer, options);
            block.Update(first, 3);
            Assert.True(block.Precondition(RandomMatrix(layer, 5), Damping).isfinite().all().item<bool>(), configuration);
        }
    }
}
