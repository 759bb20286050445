using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// Embedding y = E[k] (E of shape V × d) as a Linear layer on one-hot inputs: W̄ = Eᵀ (d × V), āₜ = e_{kₜ}, and
/// ∇_W̄ ℓᵢ = Σₜ δᵢₜ e_{kᵢₜ}ᵀ (the gradient of row k is the sum of δ over the positions holding token k).
/// Indices of any shape m × T₁ × … are accepted; every dimension after the first is a position.
/// </summary>
/// <remarks>
/// The statistics carry the indices (<see cref="Tokens"/>), never one-hot rows: per-example gradients, diagonals and
/// TENGraD's products are scatter-adds and gathers over the positions (<see cref="Fisher.TokenGradients"/>); K-FAC and
/// EKFAC use A = (1/m) Σᵢₜ e_k e_kᵀ = diag(token counts)/m, kept as a length-V vector
/// (<see cref="Curvature.Kfac.DiagonalActivation"/>), and TENGraD's Gram āᵢₜ·āⱼᵤ = [kᵢₜ = kⱼᵤ].
/// <see cref="Activations"/> (one-hot rows, m · T · V values) is formed only for a method that asks for it (K-BFGS,
/// which keeps a dense V × V A).
/// TorchSharp 0.107's Embedding does not expose padding_idx or max_norm: models using them are not covered correctly.
/// </remarks>
public sealed class EmbeddingAdapter : LayerAdapterBase, ITokenLayerAdapter
{
    public EmbeddingAdapter(string name, Embedding module)
        : base(name, module, module.weight!, null, outputDim: module.weight!.size(1))
    {
        Vocabulary = module.weight!.size(0);
    }

    public override string KindName => "Embedding";

    /// <summary>V, the number of embeddings (columns of W̄).</summary>
    public long Vocabulary { get; }

    public Tensor Tokens(Tensor input)
    {
        long m = BatchSize(input, 1);
        return input.reshape(m, -1).to_type(ScalarType.Int64);
    }

    public override Tensor Activations(Tensor input) =>
        nn.functional.one_hot(Tokens(input), Vocabulary).to_type(Weight!.dtype);   // m × T × V

    public override Tensor OutputGradients(Tensor gradOutput) =>
        gradOutput.reshape(gradOutput.size(0), -1, gradOutput.size(-1));

    public override IReadOnlyList<Tensor> SplitMatrix(Tensor matrix) => new[] { matrix.t().contiguous() };

    public override Tensor JoinMatrix(IReadOnlyList<Tensor> perParameter) => perParameter[0].t().contiguous();
}
