using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.Kfac.KfacFixtures;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// <see cref="KfacInversePrecision.Bfloat16"/>: the solve of every K-FAC and EKFAC configuration by bfloat16 GEMMs stays
/// within bfloat16's rounding of the float64 solve, on both routes (the products with ḡ and the mean-gradient route),
/// while the metric products and float64 factors are untouched.
/// </summary>
[Collection("Torch")]
public class InversePrecisionTests
{
    private const int M = 4;
    private const double Damping = 0.03;
    private static readonly KfacOptions Low = new() { FactorDecay = 0.5, InversePrecision = KfacInversePrecision.Bfloat16 };
    private static readonly KfacOptions Model = new() { FactorDecay = 0.5 };

    public static IEnumerable<object[]> Configurations() =>
        KfacFixtures.Configurations.Append("ekfac-factored").Select(c => new object[] { c });

    public static IEnumerable<object[]> ConfigurationsAndDamping() =>
        Configurations().SelectMany(c => new[] { new object[] { c[0], 1.0, 1.5e-2 }, new object[] { c[0], Damping, 1e-1 } });

    private static ICurvatureBlock Block(string configuration, ILayerAdapter layer, KfacOptions options) =>
        configuration == "ekfac-factored" ? new EkfacBlock(layer, options) : CreateBlock(configuration, layer, options);

    private static (List<ILayerAdapter> Layers, IReadOnlyList<LayerStatistics> Statistics, List<Tensor> Gradients) Problem() => WideAndNarrowLayers(M);

    private static double Relative(Tensor actual, Tensor expected) =>
        (actual.to_type(ScalarType.Float64) - expected).norm().item<double>() / expected.norm().item<double>();

    /// <summary>
    /// Float32 statistics, Bfloat16 solve: both layers' Precondition and the wide layer's mean-gradient route are within
    /// <paramref name="bound"/> (relative, Frobenius) of the float64 solve, and visibly less exact than the float32 solve
    /// (so the bfloat16 products ran); the result is float32. The rounding error of the products grows as damping
    /// shrinks (small eigenvalues of the damped factors amplify it): measured 0.6–1.1e-2 at λ = 1 and 1.6–6.9e-2 at
    /// λ = 0.03 on this problem, against 1e-6 for the float32 solve.
    /// </summary>
    [Theory]
    [MemberData(nameof(ConfigurationsAndDamping))]
    public void Bfloat16Solve_IsWithinItsRoundingOfTheFloat64Solve(string configuration, double damping, double bound)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = Problem();
        for (int l = 0; l < layers.Count; l++)
        {
            using var reference = Block(configuration, layers[l], Model);
            using var single = Block(configuration, layers[l], Model);
            using var low = Block(configuration, layers[l], Low);
            reference.Update(statistics[l], 0);
            single.Update(Float32(statistics[l]), 0);
            low.Update(Float32(statistics[l]), 0);
            var expected = reference.Precondition(gradients[l], damping);
            var g32 = gradients[l].to_type(ScalarType.Float32);
            var solved = low.Precondition(g32, damping);
            Assert.Equal(ScalarType.Float32, solved.dtype);
            double lowError = Relative(solved, expected), singleError = Relative(single.Precondition(g32, damping), expected);
            Assert.True(lowError < bound, $"{configuration}, layer {l}: bfloat16 solve off by {lowError:E2}");
            Assert.True(lowError > 10 * singleError, $"{configuration}, layer {l}: bfloat16 error {lowError:E2} against float32's {singleError:E2}");
            if (l > 0) continue;
            var route = low.PreconditionMeanGradient(Float32(statistics[l]), damping);
            Assert.NotNull(route);
            double routeError = Relative(route!, expected);
            Assert.True(routeError < bound && routeError > 10 * singleError, $"{configuration}: mean-gradient route off by {routeError:E2} (float32 solve {singleError:E2})");
        }
    }

    /// <summary>K-FAC's metric product (KL clip, quadratic model) stays float32: bitwise the Model-precision block's.</summary>
    [Theory]
    [InlineData("kfac-eigen-factored")]
    [InlineData("kfac-eigen-eigenbasis")]
    [InlineData("kfac-cholesky-factored")]
    public void Bfloat16Solve_LeavesKfacMultiplyInFloat32(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = Problem();
        using var single = Block(configuration, layers[0], Model);
        using var low = Block(configuration, layers[0], Low);
        single.Update(Float32(statistics[0]), 0);
        low.Update(Float32(statistics[0]), 0);
        low.Precondition(gradients[0].to_type(ScalarType.Float32), Damping);   // makes the bfloat16 copies
        var v = gradients[0].to_type(ScalarType.Float32);
        Assert.True(low.Multiply(v).eq(single.Multiply(v)).all().item<bool>());
    }

    /// <summary>
    /// EKFAC's scaling S is estimated from the bfloat16 projections the solve reuses: within 2e-2 of the float32 S (and
    /// not equal to it).
    /// </summary>
    [Fact]
    public void Bfloat16Solve_EkfacScalingIsWithinItsRounding()
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, _) = Problem();
        var options = Model with { InverseUpdatePeriod = 2, FactorUpdatePeriod = 1 };
        using var single = new EkfacBlock(layers[0], options);
        using var low = new EkfacBlock(layers[0], options with { InversePrecision = KfacInversePrecision.Bfloat16 });
        for (int step = 0; step < 2; step++)
        {
            single.Update(Float32(statistics[0]), step);   // step 1 accumulates S in the basis of step 0
            low.Update(Float32(statistics[0]), step);
        }
        double error = Relative(low.Scaling, single.Scaling.to_type(ScalarType.Float64));
        Assert.InRange(error, 1e-5, 2e-2);
    }

    /// <summary>Float64 factors ignore the setting: the same direction bit for bit on both routes.</summary>
    [Theory]
    [MemberData(nameof(Configurations))]
    public void Bfloat16Solve_IsIgnoredForFloat64Factors(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = Problem();
        using var model = Block(configuration, layers[0], Model);
        using var low = Block(configuration, layers[0], Low);
        model.Update(statistics[0], 0);
        low.Update(statistics[0], 0);
        Assert.True(low.Precondition(gradients[0], Damping).eq(model.Precondition(gradients[0], Damping)).all().item<bool>());
        Assert.True(low.PreconditionMeanGradient(statistics[0], Damping)!.eq(model.PreconditionMeanGradient(statistics[0], Damping)!).all().item<bool>());
    }

    /// <summary>
    /// The bfloat16 copies follow the inverses: after a refresh on other statistics the solve matches the new float64
    /// solve, not the old one (a stale copy would be off by the change of the factors).
    /// </summary>
    [Theory]
    [MemberData(nameof(Configurations))]
    public void Bfloat16Solve_FollowsARefresh(string configuration)
    {
        using var scope = NewDisposeScope();
        var (layers, statistics, gradients) = Problem();
        var model = TestModels.Mlp(new[] { 30, 40, 3 });
        var (_, other) = Collect(model, TestModels.Inputs(M, 30, seed: 9) * 3, Labels(M, 3, seed: 10), new CategoricalLikelihood());
        var options = Model with { InverseUpdatePeriod = 1, FactorUpdatePeriod = 1, FactorDecay = 0 };
        using var reference = Block(configuration, layers[0], options);
        using var low = Block(configuration, layers[0], options with { InversePrecision = KfacInversePrecision.Bfloat16 });
        reference.Update(statistics[0], 0);
        low.Update(Float32(statistics[0]), 0);
        var g32 = gradients[0].to_type(ScalarType.Float32);
        low.Precondition(g32, Damping);
        var before = reference.Precondition(gradients[0], Damping);
        reference.Update(new LayerStatistics(layers[0], other[0].Activations, other[0].OutputGradients, other[0].Weight), 1);
        low.Update(Float32(new LayerStatistics(layers[0], other[0].Activations, other[0].OutputGradients, other[0].Weight)), 1);
        var after = reference.Precondition(gradients[0], Damping);
        Assert.True(Relative(after, before) > 0.1, "the refresh changes the solve");
        Assert.True(Relative(low.Precondition(g32, Damping), after) < 3e-2, configuration);
    }
}

/// <summary>
/// The bfloat16 solve on every layer kind the preconditioner covers (sequences, Embedding, tied and shared layers,
/// convolutions, normalisation layers): the preconditioned gradient of a float32 copy of each layer case stays within
/// 3e-2 of the float32 solve's at λ = 1 (measured 1.2e-3 to 8.4e-3), and differs from it.
/// </summary>
[Collection("Torch")]
public class InversePrecisionLayerTests
{
    /// <summary>
    /// Every layer case but the two whose float64 model TorchSharp's <c>Module.to(Float32)</c> cannot convert (a tensor
    /// tied between two Linear or two Conv2d modules), and without EKFAC where it refuses the model (an Embedding tied to
    /// the output head).
    /// </summary>
    public static IEnumerable<object[]> Cases() =>
        NaturalGradient.Tests.Layers.LayerCases.Names.Where(n => n is not ("tied-linears" or "tied-convs"))
            .SelectMany(n => new[] { CurvatureStructure.Kfac, CurvatureStructure.Ekfac }
                .Where(s => !(s == CurvatureStructure.Ekfac && n.StartsWith("tied-embedding-head", StringComparison.Ordinal)))
                .Select(s => new object[] { n, s }));

    private static Tensor Direction(string name, CurvatureStructure structure, KfacInversePrecision precision) =>
        cat(Directions(name, structure, precision).Select(d => d.Grad.flatten()).ToArray());

    /// <summary>Each parameter's preconditioned gradient (name, direction) after one Precondition of the layer case in float32.</summary>
    private static List<(string Name, Tensor Grad)> Directions(string name, CurvatureStructure structure, KfacInversePrecision precision)
    {
        var c = NaturalGradient.Tests.Layers.LayerCases.Create(name);
        c.Model.to(ScalarType.Float32);
        Tensor Single(Tensor t) => t.is_floating_point() ? t.to_type(ScalarType.Float32) : t;
        using var pc = new NaturalGradient.Preconditioning.NaturalGradientPreconditioner(c.Model, c.Likelihood, new NaturalGradient.Preconditioning.PreconditionerOptions
        {
            Structure = structure, Damping = 1.0, Kfac = new KfacOptions { InversePrecision = precision },
        });
        c.Model.zero_grad();
        pc.Backward(c.Model.call(Single(c.X)), Single(c.Y));
        pc.Precondition();
        return c.Model.named_parameters().Where(p => p.parameter.grad is not null).Select(p => (p.name, p.parameter.grad!.clone())).ToList();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bfloat16Solve_OnEveryLayerKind_IsWithinItsRounding(string name, CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var single = Direction(name, structure, KfacInversePrecision.Model);
        var low = Direction(name, structure, KfacInversePrecision.Bfloat16);
        double error = (low - single).norm().item<float>() / single.norm().item<float>();
        Assert.InRange(error, 1e-5, 3e-2);
    }

    /// <summary>
    /// An Embedding keeps A as a vector (token counts), so K-FAC's factored solve of its table is (G + √λ/π I)⁻¹V
    /// followed by a column scaling by 1 / (a + π√λ): the G product is a GEMM like a dense layer's and runs in bfloat16
    /// too (the scaling stays float32). Checked on the Embedding's own weight, alone and tied between two Embeddings.
    /// </summary>
    [Theory]
    [InlineData("embedding", "emb.weight")]
    [InlineData("tied-embeddings", "left.weight")]
    public void Bfloat16Solve_ReachesKfacsSolveOfAnEmbedding(string name, string parameter)
    {
        using var scope = NewDisposeScope();
        var single = Directions(name, CurvatureStructure.Kfac, KfacInversePrecision.Model).Single(d => d.Name == parameter).Grad;
        var low = Directions(name, CurvatureStructure.Kfac, KfacInversePrecision.Bfloat16).Single(d => d.Name == parameter).Grad;
        double error = (low - single).norm().item<float>() / single.norm().item<float>();
        Assert.InRange(error, 1e-5, 3e-2);
    }
}
