using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Fisher;

/// <summary>
/// An index layer's per-example statistics from its token indices, for W̄ = Eᵀ (out × V) and āᵢₜ = e_{kᵢₜ}:
/// gᵢ = Σₜ δᵢₜ e_{kᵢₜ}ᵀ, i.e. column k of gᵢ is the sum of δᵢₜ over the positions holding token k. Every operation is a
/// gather or scatter-add over the n · T positions: nothing of size n × T × V is formed.
/// </summary>
public static class TokenGradients
{
    /// <summary>Per-sample gradients n × out × V from tokens k (n × T, int64) and δ (n × T × out). Memory n · out · V.</summary>
    public static Tensor PerSample(Tensor tokens, Tensor delta, long vocabulary)
    {
        long n = delta.size(0), t = delta.size(1), d = delta.size(2);
        var g = zeros(new[] { n, d, vocabulary }, dtype: delta.dtype, device: delta.device);
        return g.scatter_add_(2, tokens.unsqueeze(1).expand(n, d, t), delta.transpose(1, 2));
    }

    /// <summary>
    /// Σᵢ gᵢ ∘ gᵢ (out × V), the unweighted diagonal of the metric, from the sums of δ over each (example, token) pair
    /// that occurs: O(n T out + V out) memory.
    /// </summary>
    public static Tensor SquaredSum(Tensor tokens, Tensor delta, long vocabulary)
    {
        using var scope = NewDisposeScope();
        long n = delta.size(0), d = delta.size(2);
        var key = (arange(n, dtype: ScalarType.Int64, device: tokens.device).mul_(vocabulary).unsqueeze(1) + tokens).flatten();
        var (pairs, inverse, _) = key.unique(sorted: true, return_inverse: true);
        var sums = zeros(new[] { pairs.size(0), d }, dtype: delta.dtype, device: delta.device)
            .index_add_(0, inverse!, delta.reshape(-1, d), 1.0);                       // per (example, token) pair: Σₜ δ
        var squares = zeros(new[] { vocabulary, d }, dtype: delta.dtype, device: delta.device)
            .index_add_(0, pairs.remainder(vocabulary), sums.mul_(sums), 1.0);          // V × out
        return scope.MoveToOuter(squares.t().contiguous());
    }

    /// <summary>(J g)ᵢ = Σₜ δᵢₜ · g[:, kᵢₜ] for a W̄-shaped g (out × V): length n.</summary>
    public static Tensor Multiply(Tensor tokens, Tensor delta, Tensor g)
    {
        long n = delta.size(0), t = delta.size(1);
        var columns = g.t().index_select(0, tokens.flatten()).reshape(n, t, -1);   // n × T × out
        return (columns * delta).sum(new long[] { 1, 2 });
    }

    /// <summary>Jᵀ u = Σᵢ Σₜ uᵢ δᵢₜ e_{kᵢₜ}ᵀ for u of length n: out × V.</summary>
    public static Tensor TransposeMultiply(Tensor tokens, Tensor delta, Tensor u, long vocabulary)
    {
        long d = delta.size(2);
        var rows = (delta * u.reshape(-1, 1, 1)).reshape(-1, d);
        return zeros(new[] { vocabulary, d }, dtype: delta.dtype, device: delta.device).index_add_(0, tokens.flatten(), rows, 1.0).t();
    }
}
