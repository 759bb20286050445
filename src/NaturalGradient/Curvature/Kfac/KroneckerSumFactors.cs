using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// One batch's Kronecker terms of a tensor tied in transposed layouts (an Embedding table E, V × d, reused as the output
/// Linear's weight; <see cref="Capture.TiedLayerAdapter"/>), in W̄'s layout (R = V rows, in' columns): the direct (Linear)
/// uses give G₁ ⊗ A₁ and the transposed (Embedding) uses G₂ ⊗ A₂, each K-FAC-expand over its own positions.
/// </summary>
/// <remarks>
/// <para>With T₁ direct positions (δ of the head, R wide; ā placed in its tensors' columns) and T₂ transposed positions
/// (δ̃ = e_k, the one-hot row of the token; ã = the Embedding's output gradient δ_emb placed in E's columns, zero in bias
/// columns) of <see cref="LayerStatistics.TransposedPositions"/>:
/// A₁ = (1/m) Σᵢ Σ_{t∈T₁} āᵢₜāᵢₜᵀ (in' × in'), G₁ = (w/T₁) Σₛᵢ Σ_{t∈T₁} δᵢₛₜδᵢₛₜᵀ (R × R),
/// G₂ = (1/m) Σᵢ Σ_{t∈T₂} e_k e_kᵀ = diag(token counts)/m (kept as its diagonal, length R),
/// A₂ = (w/T₂) Σₛᵢ Σ_{t∈T₂} δ_emb,ᵢₛₜ δ_emb,ᵢₛₜᵀ (in' × in').</para>
/// <para>For m = 1 and one position per use, G₁ ⊗ A₁ = w Σₛ g₁ₛg₁ₛᵀ and G₂ ⊗ A₂ = w Σₛ g₂ₛg₂ₛᵀ exactly, gᵤₛ being use u's
/// contribution to the per-example gradient; their sum drops the cross-use terms g₁ₛg₂ₛᵀ + g₂ₛg₁ₛᵀ of the exact block, as
/// K-FAC drops cross-position terms.</para>
/// </remarks>
public static class KroneckerSumFactors
{
    /// <summary>The batch's (A₁, G₁, diag G₂, A₂), in the statistics' dtype; a kind of use absent from the batch gives zeros.</summary>
    /// <exception cref="ArgumentException">The statistics do not say which positions are transposed.</exception>
    public static (Tensor A1, Tensor G1, Tensor G2, Tensor A2) Batch(LayerStatistics statistics)
    {
        var mask = statistics.TransposedPositions ?? throw new ArgumentException(
            $"statistics of layer '{statistics.Adapter.Name}' do not mark the positions of transposed uses (TransposedPositions): " +
            "collect them with FisherEstimator from a TiedLayerAdapter", nameof(statistics));
        if (mask.Count != statistics.Positions)
            throw new ArgumentException($"TransposedPositions has {mask.Count} entries for {statistics.Positions} positions", nameof(statistics));
        using var scope = NewDisposeScope();
        var device = statistics.OutputGradients.device;
        var direct = tensor(Enumerable.Range(0, mask.Count).Where(t => !mask[t]).Select(t => (long)t).ToArray(), ScalarType.Int64).to(device);
        var transposed = tensor(Enumerable.Range(0, mask.Count).Where(t => mask[t]).Select(t => (long)t).ToArray(), ScalarType.Int64).to(device);
        long m = statistics.BatchSize, t1 = direct.size(0), t2 = transposed.size(0);
        var act = statistics.Activations.detach();
        if (act.dim() == 3) act = act.unsqueeze(0);                                  // s × m × T × in'
        var d = statistics.OutputGradients.detach();                                 // s × m × T × R
        long inputs = act.size(3), rows = d.size(3);

        var a1Rows = act[0].index_select(1, direct).reshape(-1, inputs);            // direct ā does not depend on the sample
        var g1Rows = d.index_select(2, direct).reshape(-1, rows);
        var a2Rows = act.index_select(2, transposed).reshape(-1, inputs);
        var a1 = a1Rows.t().mm(a1Rows).div_(m);
        var g1 = g1Rows.t().mm(g1Rows).mul_(statistics.Weight / Math.Max(t1, 1));
        var g2 = d[0].index_select(1, transposed).reshape(-1, rows).sum(new long[] { 0 }).div_(m);   // one-hot rows: token counts / m
        var a2 = a2Rows.t().mm(a2Rows).mul_(statistics.Weight / Math.Max(t2, 1));
        return (a1.MoveToOuterDisposeScope(), g1.MoveToOuterDisposeScope(), g2.MoveToOuterDisposeScope(), a2.MoveToOuterDisposeScope());
    }
}
