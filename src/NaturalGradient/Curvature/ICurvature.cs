using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature;

/// <summary>
/// A curvature approximation M over the covered layers: it absorbs statistics and solves (M + λI) Δ = g.
/// Gradients and directions are per layer, as W̄-shaped matrices (out × in'), in the order of <c>layers</c>.
/// </summary>
public interface ICurvature : IDisposable
{
    /// <summary>Absorbs one step's metric statistics (replace, or a running average, as the method defines).</summary>
    void Update(CurvatureBatch batch);

    /// <summary>
    /// Δ = (M + λI)⁻¹ g for each layer's gradient matrix. Returns fresh tensors that the caller owns and may change in
    /// place (<see cref="Optim.NaturalGradientDescent"/> scales them for the KL clip and adds the momentum into them):
    /// never the gradients themselves, views of them, or state the curvature keeps.
    /// </summary>
    IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping);

    /// <summary>
    /// Δ = (M + λI)⁻¹ g where each gradient g is known to be the mean gradient of <paramref name="statistics"/>,
    /// g = w Σᵢ δᵢāᵢᵀ (s = 1), so a method may form Δ from Ā and D instead of g when that is cheaper (same result up to
    /// round-off). <paramref name="statistics"/>, in the order of <paramref name="layers"/>, are those of the last
    /// <see cref="Update"/> (the empirical Fisher taken from the backward pass of the same batch's mean loss) or rows with
    /// that update's Ā and the loss's own D (beside a Monte-Carlo or exact metric): a method that needs the metric's own
    /// rows (TENGraD's push-through) checks that they are the same object. Defaults to <see cref="Precondition"/>.
    /// </summary>
    IReadOnlyList<Tensor> PreconditionMeanGradient(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients,
        IReadOnlyList<Fisher.LayerStatistics> statistics, double damping) => Precondition(layers, gradients, damping);

    /// <summary>
    /// As <see cref="PreconditionMeanGradient(IReadOnlyList{ILayerAdapter}, IReadOnlyList{Tensor}, IReadOnlyList{Fisher.LayerStatistics}, double)"/>,
    /// and, when innerProducts (one entry per layer) is given, for each layer whose block can form ⟨Δₗ, ḡₗ⟩ from its
    /// route's own products more cheaply than ḡₗ itself, that inner product (a float64 scalar tensor) in innerProducts[l];
    /// the other entries stay null, and the caller forms those ḡₗ (the KL clip on η²Δᵀg of
    /// <see cref="Optim.KlClipForm.PreconditionedGradient"/>). Defaults to the method without inner products.
    /// </summary>
    IReadOnlyList<Tensor> PreconditionMeanGradient(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients,
        IReadOnlyList<Fisher.LayerStatistics> statistics, double damping, Tensor?[]? innerProducts) =>
        PreconditionMeanGradient(layers, gradients, statistics, damping);

    /// <summary>M v (no damping): for the predicted KL ½ΔᵀMΔ and Levenberg–Marquardt's quadratic model.</summary>
    IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors);

    /// <summary>
    /// vᵀMv summed over the layers (a scalar tensor, no host read): the predicted KL of a step v is half of it.
    /// Defaults to Σ ⟨vₗ, (M v)ₗ⟩; a method that can form it more cheaply overrides it.
    /// </summary>
    Tensor QuadraticForm(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors) =>
        QuadraticForms.Sum(vectors, Multiply(layers, vectors));
}

/// <summary>Helpers for vᵀMv.</summary>
public static class QuadraticForms
{
    /// <summary>Σₗ ⟨vₗ, wₗ⟩ in float64, as a scalar tensor.</summary>
    public static Tensor Sum(IReadOnlyList<Tensor> vectors, IReadOnlyList<Tensor> products) => Sum(vectors, products, null);

    /// <summary>
    /// Σₗ ⟨vₗ, wₗ⟩ in float64, as a scalar tensor, taking ⟨vₗ, wₗ⟩ from <paramref name="known"/>[l] where it is not null
    /// (then wₗ is not read, so a lazily formed list does not form it).
    /// </summary>
    public static Tensor Sum(IReadOnlyList<Tensor> vectors, IReadOnlyList<Tensor> products, IReadOnlyList<Tensor?>? known)
    {
        Tensor total = zeros(1, dtype: ScalarType.Float64).squeeze();
        for (int i = 0; i < vectors.Count; i++)
            total = total.add_(known?[i] ?? vectors[i].mul(products[i]).sum(ScalarType.Float64));
        return total;
    }
}

/// <summary>One layer's block of a block-diagonal curvature approximation.</summary>
public interface ICurvatureBlock : IDisposable
{
    /// <summary>Absorbs this layer's statistics for the step.</summary>
    void Update(Fisher.LayerStatistics statistics, long step);

    /// <summary>(B + λI)⁻¹ g for the layer's W̄-shaped gradient g, as a fresh tensor the caller owns (see <see cref="ICurvature.Precondition"/>).</summary>
    Tensor Precondition(Tensor gradient, double damping);

    /// <summary>
    /// (B + λI)⁻¹ g for the statistics' mean gradient g = w Σᵢ δᵢāᵢᵀ (s = 1), formed from Ā and D when that is cheaper
    /// than from g; null when the block has no such route (the caller then uses <see cref="Precondition"/>).
    /// </summary>
    Tensor? PreconditionMeanGradient(Fisher.LayerStatistics statistics, double damping) => null;

    /// <summary>
    /// As <see cref="PreconditionMeanGradient(Fisher.LayerStatistics, double)"/>; with <paramref name="innerProduct"/>, also
    /// ⟨Δ, ḡ⟩ = Σ Δ ∘ ḡ when the route's own products give it more cheaply than forming ḡ and to the accuracy of Δ itself
    /// (else null: the caller forms ḡ).
    /// Defaults to the route without the inner product.
    /// </summary>
    MeanGradientDirection? PreconditionMeanGradient(Fisher.LayerStatistics statistics, double damping, bool innerProduct) =>
        PreconditionMeanGradient(statistics, damping) is { } direction ? new MeanGradientDirection(direction, null) : null;

    /// <summary>B v for a W̄-shaped v.</summary>
    Tensor Multiply(Tensor v);

    /// <summary>vᵀBv for a W̄-shaped v (a scalar tensor, float64); defaults to ⟨v, B v⟩.</summary>
    Tensor QuadraticForm(Tensor v) => v.mul(Multiply(v)).sum(ScalarType.Float64);

    /// <summary>The dense block (p × p, row-major vec of W̄): for tests and small layers only.</summary>
    Tensor ToDense();

    /// <summary>tr(B) / p, the block's mean eigenvalue (for <see cref="Damping.LayerDamping.Relative"/>). One host read.</summary>
    double MeanCurvature() => ToDense().diagonal().mean().ToDouble();
}

/// <summary>
/// A block's Δ = (B + λI)⁻¹ḡ from its mean-gradient route, with ⟨Δ, ḡ⟩ (a float64 scalar tensor) when it was asked for
/// and the route could form it without ḡ; null otherwise.
/// </summary>
public readonly record struct MeanGradientDirection(Tensor Direction, Tensor? GradientInnerProduct);
