using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// ⟨Δ, ḡ⟩ from the mean-gradient route without ḡ (the KL clip on η²Δᵀg): K-FAC's factored damping by the m × m Grams
/// w² Σ (P Dᵀ) ∘ (Q Āᵀ), the eigenbasis (K-FAC's eigenbasis damping, EKFAC) by Σ Y ∘ Y ∘ E. Checked in float64 against
/// Σ Δ ∘ ḡ of the block's ordinary solve of autograd's gradient, and, where the block solves (B + λI) exactly, against
/// vec(ḡ)ᵀ(B + λI)⁻¹vec(ḡ) from the dense block.
/// </summary>
[Collection("Torch")]
public class MeanGradientInnerProductTests
{
    private const double Damping = 0.03;

    public static IEnumerable<object[]> ConfigurationData() =>
        Configurations.Append("ekfac-factored").Select(c => new object[] { c });

    private static ICurvatureBlock Block(string configuration, ILayerAdapter layer, KfacOptions options) =>
        configuration == "ekfac-factored" ? new EkfacBlock(layer, options) : CreateBlock(configuration, layer, options);

    private static double Sum(Tensor x) => x.sum(ScalarType.Float64).item<double>();

    [Theory]
    [MemberData(nameof(ConfigurationData))]
    public void InnerProduct_EqualsTheSolvesDirectionDotTheLossGradient(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = WideAndNarrowLayers(4);
        using var block = Block(configuration, layers[0], new KfacOptions { FactorDecay = 0.5 });
        block.Update(statistics[0], 0);
        var expected = block.Precondition(gradients[0], Damping);
        double expectedInner = Sum(expected.mul(gradients[0]));
        long before = KroneckerFactors.MeanGradientInnerProducts;
        var routed = block.PreconditionMeanGradient(statistics[0], Damping, innerProduct: true);
        Assert.NotNull(routed);
        Assert.NotNull(routed!.Value.GradientInnerProduct);
        Assert.Equal(1, KroneckerFactors.MeanGradientInnerProducts - before);
        var inner = routed.Value.GradientInnerProduct!;
        Assert.Equal(ScalarType.Float64, inner.dtype);
        Assert.Equal(0, inner.dim());
        Assert.Equal(expectedInner, inner.item<double>(), 1e-10 * Math.Abs(expectedInner));
        TensorAssert.Close(expected, routed.Value.Direction, rtol: 1e-10, label: configuration);
        if (!DampsExactly(configuration)) return;
        var dense = block.ToDense();
        var g = gradients[0].flatten();
        double quadratic = g.dot(linalg.solve(dense + Damping * eye(dense.shape[0], dtype: dense.dtype), g)).item<double>();
        Assert.Equal(quadratic, inner.item<double>(), 1e-9 * Math.Abs(quadratic));
    }

    /// <summary>Without the request the route forms no inner product.</summary>
    [Theory]
    [MemberData(nameof(ConfigurationData))]
    public void InnerProduct_IsFormedOnlyWhenAskedFor(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, _) = WideAndNarrowLayers(4);
        using var block = Block(configuration, layers[0], new KfacOptions { FactorDecay = 0.5 });
        block.Update(statistics[0], 0);
        long before = KroneckerFactors.MeanGradientInnerProducts;
        var routed = block.PreconditionMeanGradient(statistics[0], Damping, innerProduct: false);
        Assert.NotNull(routed);
        Assert.Null(routed!.Value.GradientInnerProduct);
        Assert.Equal(0, KroneckerFactors.MeanGradientInnerProducts - before);
    }

    /// <summary>
    /// At m = 20 the 40 × 31 layer still takes K-FAC's route (20 · 3801 &lt; 1240 · 71) but the Grams cost more than ḡ
    /// (20 · 71 &gt; 1240): factored damping leaves the inner product to the caller; the eigenbasis forms it anyway.
    /// </summary>
    [Theory]
    [InlineData("kfac-cholesky-factored", false)]
    [InlineData("kfac-eigen-factored", false)]
    [InlineData("kfac-eigen-eigenbasis", true)]
    public void FactoredInnerProduct_IsLeftToTheCallerWhenTheGramsCostMore(string configuration, bool formed)
    {
        using var scope = NewDisposeScope();
        Assert.True(KroneckerFactors.MeanGradientRouteIsCheaper(20, 40, 31));
        Assert.False(KroneckerFactors.GramInnerProductIsCheaper(20, 40, 31));
        var (layers, statistics, gradients) = WideAndNarrowLayers(20);
        using var block = Block(configuration, layers[0], new KfacOptions { FactorDecay = 0.5 });
        block.Update(statistics[0], 0);
        var routed = block.PreconditionMeanGradient(statistics[0], Damping, innerProduct: true);
        Assert.NotNull(routed);
        Assert.Equal(formed, routed!.Value.GradientInnerProduct is not null);
        TensorAssert.Close(block.Precondition(gradients[0], Damping), routed.Value.Direction, rtol: 1e-10, label: configuration);
    }

    /// <summary>
    /// EKFAC's route on the 3 × 41 layer from its update's projections, and on the wide layer from D and Ā when the
    /// statistics are not those of the update (no cached projections): the same inner product.
    /// </summary>
    [Fact]
    public void Ekfac_InnerProduct_WithAndWithoutCachedProjections()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = WideAndNarrowLayers(4);
        using var narrow = new EkfacBlock(layers[1], new KfacOptions { FactorDecay = 0.5 });
        narrow.Update(statistics[1], 0);
        double expected = Sum(narrow.Precondition(gradients[1], Damping).mul(gradients[1]));
        Assert.Equal(expected, narrow.PreconditionMeanGradient(statistics[1], Damping, innerProduct: true)!.Value.GradientInnerProduct!.item<double>(), 1e-10 * Math.Abs(expected));

        using var wide = new EkfacBlock(layers[0], new KfacOptions { FactorDecay = 0.5, InverseUpdatePeriod = 100 });
        wide.Update(statistics[0], 0);
        wide.Update(statistics[0], 1);
        var copy = new LayerStatistics(statistics[0].Adapter, statistics[0].Activations, statistics[0].OutputGradients, statistics[0].Weight);
        expected = Sum(wide.Precondition(gradients[0], Damping).mul(gradients[0]));
        Assert.Equal(expected, wide.PreconditionMeanGradient(copy, Damping, innerProduct: true)!.Value.GradientInnerProduct!.item<double>(), 1e-10 * Math.Abs(expected));
    }

    /// <summary>
    /// With the bfloat16 solve factored K-FAC's inner product comes from the same bfloat16 products as Δ: within their
    /// rounding (measured below 1e-2 relative here) of Σ Δ ∘ ḡ of the float64 solve. The eigenbasis gives none (the
    /// caller forms ḡ; <see cref="Bfloat16Solve_InnerProduct_IsThatOfTheReturnedDirection"/>).
    /// </summary>
    [Theory]
    [MemberData(nameof(ConfigurationData))]
    public void Bfloat16Solve_InnerProduct_IsWithinItsRounding(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = WideAndNarrowLayers(4);
        using var reference = Block(configuration, layers[0], new KfacOptions { FactorDecay = 0.5 });
        using var low = Block(configuration, layers[0], new KfacOptions { FactorDecay = 0.5, InversePrecision = KfacInversePrecision.Bfloat16 });
        reference.Update(statistics[0], 0);
        low.Update(Float32(statistics[0]), 0);
        double expected = Sum(reference.Precondition(gradients[0], Damping).mul(gradients[0]));
        var routed = low.PreconditionMeanGradient(Float32(statistics[0]), Damping, innerProduct: true);
        Assert.NotNull(routed);
        if (!configuration.EndsWith("-factored", StringComparison.Ordinal) || !configuration.StartsWith("kfac", StringComparison.Ordinal))
        {
            Assert.Null(routed!.Value.GradientInnerProduct);
            return;
        }
        var inner = routed!.Value.GradientInnerProduct!.item<double>();
        Assert.True(Math.Abs(inner - expected) < 3e-2 * Math.Abs(expected), $"{configuration}: {inner} against {expected}");
    }

    /// <summary>
    /// With the bfloat16 solve, an inner product the route gives is that of the Δ it returns, Σ Δ ∘ ḡ (float64 sums of
    /// the returned Δ and autograd's gradient), to within the rounding of Δ to bfloat16, 2⁻⁸ Σ |Δ ∘ ḡ| (bfloat16 kernels
    /// of different CPUs round differently; a fixed relative tolerance is exceeded where the sum cancels);
    /// otherwise the route gives none and the caller forms ḡ. In the eigenbasis Σ X̃ ∘ (X̃ ⊘ E) would count the bfloat16
    /// rounding of the projected gradient X̃ twice: an upward bias that grows as λ shrinks (K-FAC's eigenbasis damping at
    /// λ = 1e-4, m = 2: +10 % against Σ Δ ∘ ḡ; EKFAC's factored damping at λ = 1e-6: +2 %). Factored K-FAC's Grams pair
    /// the rounded P and Q with the exact D and Ā, and keep theirs.
    /// </summary>
    [Theory]
    [MemberData(nameof(ConfigurationData))]
    public void Bfloat16Solve_InnerProduct_IsThatOfTheReturnedDirection(string configuration)
    {
        using var scope = NewDisposeScope();
        int compared = 0;
        foreach (long m in new long[] { 2, 4 })
        {
            var (layers, statistics, gradients) = WideAndNarrowLayers(m);
            for (int l = 0; l < layers.Count; l++)
                foreach (double damping in new[] { 1e-4, 1e-6 })
                {
                    using var low = Block(configuration, layers[l], new KfacOptions { FactorDecay = 0.5, InversePrecision = KfacInversePrecision.Bfloat16 });
                    var rows = Float32(statistics[l]);
                    low.Update(rows, 0);
                    if (low.PreconditionMeanGradient(rows, damping, innerProduct: true) is not { GradientInnerProduct: { } inner } routed) continue;
                    var terms = routed.Direction.to_type(ScalarType.Float64).mul(gradients[l]);
                    double applied = Sum(terms);
                    double given = inner.item<double>();
                    // Δ is rounded to bfloat16 element by element (unit round-off 2⁻⁸) after the Grams' float32 sums, so
                    // the two differ by at most 2⁻⁸ Σ |Δ ∘ ḡ| (plus float32 round-off), whatever the CPU's bfloat16 kernel.
                    double bound = Math.Pow(2, -8) * Sum(terms.abs()) + 1e-3 * Math.Abs(applied);
                    Assert.True(Math.Abs(given - applied) <= bound,
                        $"{configuration}, m = {m}, layer {l}, λ = {damping}: the route's ⟨Δ, ḡ⟩ {given:G6}, Σ Δ ∘ ḡ of its Δ {applied:G6} (bound {bound:G3})");
                    compared++;
                }
        }
        if (configuration.EndsWith("-factored", StringComparison.Ordinal) && configuration.StartsWith("kfac", StringComparison.Ordinal))
            Assert.True(compared > 0, $"{configuration}: no inner product from the Grams");
    }

    /// <summary>
    /// NaturalGradientDescent with a binding KL clip on η²Δᵀg takes the inner products from the route and steps as the
    /// eager path (weight decay 1e-300: every .grad by autograd, no route) to 1e-10, with the same clip scale.
    /// </summary>
    [Theory]
    [InlineData(CurvatureStructure.Kfac, KfacDampingMode.Factored, 3)]
    [InlineData(CurvatureStructure.Kfac, KfacDampingMode.Eigenbasis, 3)]
    [InlineData(CurvatureStructure.Ekfac, KfacDampingMode.Eigenbasis, 6)]
    [InlineData(CurvatureStructure.Ekfac, KfacDampingMode.Factored, 6)]
    public void NaturalGradientDescent_WithAGradientKlClip_StepsAsTheEagerPath(CurvatureStructure structure, KfacDampingMode mode, int innerProducts)
    {
        using var scope = NewDisposeScope();
        NaturalGradientDescent Optimizer(double weightDecay) => new(TestModels.Mlp(new[] { 30, 40, 3 }, seed: 9), new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.5, Momentum = 0.9, WeightDecay = weightDecay, KlClip = 1e-4, KlClipForm = KlClipForm.PreconditionedGradient,
            Preconditioner = new PreconditionerOptions
            {
                Structure = structure, Fisher = FisherKind.Empirical, Damping = Damping,
                Kfac = new KfacOptions { FactorUpdatePeriod = 1, InverseUpdatePeriod = 2, DampingMode = mode, InverseMethod = mode == KfacDampingMode.Eigenbasis ? KfacInverseMethod.Eigen : KfacInverseMethod.Cholesky },
            },
        });
        using var routed = Optimizer(0);
        using var eager = Optimizer(1e-300);
        long before = KroneckerFactors.MeanGradientInnerProducts;
        for (int s = 0; s < 3; s++)
        {
            using var step = NewDisposeScope();
            var x = TestModels.Inputs(4, 30, seed: 20 + s);
            var y = Labels(4, 3, seed: 30 + s);
            var a = routed.Step(x, y);
            var b = eager.Step(x, y);
            Assert.True(a.Applied && b.Applied);
            Assert.True(b.KlClipScale < 1, $"step {s}: the clip did not bind ({b.KlClipScale})");
            Assert.Equal(b.KlClipScale, a.KlClipScale, 1e-10);
        }
        // K-FAC: the 40 × 31 layer on each step (the 3 × 41 one has no route); EKFAC: both layers.
        Assert.Equal(innerProducts, KroneckerFactors.MeanGradientInnerProducts - before);
        foreach (var (pa, pb) in routed.Preconditioner.Layers.Zip(eager.Preconditioner.Layers))
            TensorAssert.Close(pb.WeightMatrix(), pa.WeightMatrix(), rtol: 1e-10, label: $"{structure} {mode} {pa.Name}");
    }
}
