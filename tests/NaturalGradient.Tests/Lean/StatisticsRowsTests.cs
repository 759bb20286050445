using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// A Linear layer's statistics are built as rows — Ā as (m·T) × in', D as (m·T) × out — and kept as rows, the m × T × in'
/// and 1 × m × T × out tensors being views made when read, so that the blocks read the rows without a view. Checked against Ā and D built
/// here by hand (a concatenated column of ones, a reshape), and the row consumers against the per-sample gradients.
/// </summary>
[Collection("Torch")]
public class StatisticsRowsTests
{
    public static TheoryData<long[], bool, bool> Shapes => new()
    {
        { new long[] { 6, 5 }, true, true },         // m × d, weight and bias
        { new long[] { 6, 5 }, false, true },        // no bias: Ā is the input itself
        { new long[] { 6, 5 }, true, false },        // frozen weight: Ā is the ones column
        { new long[] { 4, 3, 5 }, true, true },      // m × T × d: positions
        { new long[] { 2, 3, 2, 5 }, true, true },   // m × T₁ × T₂ × d
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void CallStatistics_EqualAbarAndDBuiltByHand_AndKeepTheRowsTheirViewsShow(long[] inputShape, bool bias, bool trainableWeight)
    {
        using var scope = NewDisposeScope();
        var linear = nn.Linear(5, 3, hasBias: bias, dtype: ScalarType.Float64);
        if (!trainableWeight) linear.weight!.requires_grad = false;
        var adapter = new LinearAdapter("fc", linear);
        manual_seed(5);
        var input = randn(inputShape, dtype: ScalarType.Float64);
        var outputShape = inputShape.ToArray();
        outputShape[^1] = 3;
        var gradient = randn(outputShape, dtype: ScalarType.Float64);
        long m = inputShape[0], rows = input.numel() / 5;

        var statistics = adapter.CallStatistics(input, gradient, weight: 0.25);

        var features = input.reshape(rows, 5);
        var expectedRows = (trainableWeight, bias) switch
        {
            (true, true) => cat(new[] { features, ones(rows, 1, dtype: ScalarType.Float64) }, 1),
            (true, false) => features,
            _ => ones(rows, 1, dtype: ScalarType.Float64),
        };
        TensorAssert.Close(expectedRows.reshape(m, rows / m, -1), statistics.Activations, rtol: 0);
        TensorAssert.Close(gradient.reshape(1, m, rows / m, 3), statistics.OutputGradients, rtol: 0);
        Assert.Equal(0.25, statistics.Weight);
        Assert.Equal(rows / m, statistics.Positions);
        // The rows are kept, and the views are views of them (the same storage, no copy).
        var (activationRows, gradientRows) = statistics.KeptRows!.Value;
        Assert.Same(activationRows, statistics.ActivationRows());
        Assert.Same(gradientRows, statistics.OutputGradientRows());
        Assert.Same(activationRows, statistics.PairedActivationRows());
        TensorAssert.Close(expectedRows, activationRows, rtol: 0);
        Assert.Equal(TensorIdentity.StorageAddress(activationRows), TensorIdentity.StorageAddress(statistics.Activations));
        Assert.Equal(TensorIdentity.StorageAddress(gradientRows), TensorIdentity.StorageAddress(statistics.OutputGradients));
        // A gradient weight keeps the rows.
        Assert.Same(activationRows, statistics.WithGradientWeight(0.5).ActivationRows());
    }

    /// <summary>
    /// The statistics hold the rows only: building them from a 2-D input makes one tensor (Ā's pad; D's rows are the
    /// gradient itself), each read of the m × T × in' or 1 × m × T × out tensors makes one view, the dtype is read
    /// without one, a gradient weight keeps the rows, and after the rows' dispose scope ends the statistics say so.
    /// </summary>
    [Fact]
    public void CallStatistics_MakeNoViewUntilOneIsRead_AndKnowWhenTheirRowsAreDisposed()
    {
        using var outer = NewDisposeScope();
        var adapter = new LinearAdapter("fc", nn.Linear(5, 3, dtype: ScalarType.Float32));
        LayerStatistics statistics;
        using (var step = NewDisposeScope())
        {
            var input = randn(6, 5);
            var gradient = randn(6, 3);
            long before = Created();
            statistics = adapter.CallStatistics(input, gradient, weight: 1.0 / 6);
            Assert.Equal(1, Created() - before);
            Assert.Equal(ScalarType.Float32, statistics.Dtype);
            Assert.Equal(1, Created() - before);
            Assert.Equal(new long[] { 6, 1, 6 }, statistics.Activations.shape);
            Assert.Equal(new long[] { 1, 6, 1, 3 }, statistics.OutputGradients.shape);
            Assert.Equal(3, Created() - before);
            var weighted = statistics.WithGradientWeight(1.0 / 6);
            Assert.Equal(1.0 / 6, weighted.GradientWeight);
            Assert.Same(statistics.OutputGradientRows(), weighted.OutputGradientRows());
            Assert.Equal(6, weighted.BatchSize);
            Assert.False(statistics.IsDisposed);
        }
        Assert.True(statistics.IsDisposed);
    }

    private static long Created() => DisposeScopeManager.Statistics.CreatedInScopeCount + DisposeScopeManager.Statistics.CreatedOutsideScopeCount;

    /// <summary>Ā = [a 1] by a constant pad below <see cref="LayerAdapterBase.PadMaximum"/> entries and by a copy and a fill above.</summary>
    [Theory]
    [InlineData(8, 5)]
    [InlineData(64, 600)]     // 38,400 entries: the copy and fill
    public void Abar_IsTheInputWithAColumnOfOnes_OnEitherSideOfThePadLimit(long m, long d)
    {
        using var scope = NewDisposeScope();
        var adapter = new LinearAdapter("fc", nn.Linear(d, 2));
        var input = randn(m, d);
        var expected = cat(new[] { input, ones(m, 1) }, 1).unsqueeze(1);
        Assert.Equal(m * d >= LayerAdapterBase.PadMaximum, d == 600);
        TensorAssert.Close(expected.to_type(ScalarType.Float64), adapter.Activations(input).to_type(ScalarType.Float64), rtol: 0);
    }

    /// <summary>
    /// Σᵢ gᵢ from the rows (Dᵀ Ā) against the per-sample gradients summed, for kept rows, for s = 3 samples sharing one Ā
    /// (the paired rows repeat it) and for activations per sample; and the rows read by the blocks have the paired shape.
    /// </summary>
    [Fact]
    public void GradientSum_FromTheRows_EqualsTheSummedPerSampleGradients()
    {
        using var scope = NewDisposeScope();
        var adapter = new LinearAdapter("fc", nn.Linear(4, 3, dtype: ScalarType.Float64));
        manual_seed(9);
        var input = randn(6, 2, 4, dtype: ScalarType.Float64);
        var kept = adapter.CallStatistics(input, randn(6, 2, 3, dtype: ScalarType.Float64), 1.0);
        var abar = adapter.Activations(input);
        var samples = new LayerStatistics(adapter, abar, randn(3, 6, 2, 3, dtype: ScalarType.Float64), 1.0);
        var perSample = new LayerStatistics(adapter, randn(3, 6, 2, 5, dtype: ScalarType.Float64), randn(3, 6, 2, 3, dtype: ScalarType.Float64), 1.0);
        foreach (var statistics in new[] { kept, samples, perSample })
        {
            TensorAssert.Close(statistics.PerSampleGradients().sum(dim: 0), statistics.GradientSum(), rtol: 1e-12);
            Assert.Equal(new[] { statistics.SampleCount * statistics.Positions, 5L }, statistics.PairedActivationRows().shape);
            Assert.Equal(new[] { statistics.SampleCount * statistics.Positions, 3L }, statistics.OutputGradientRows().shape);
        }
        Assert.Null(samples.KeptRows);
    }
}
