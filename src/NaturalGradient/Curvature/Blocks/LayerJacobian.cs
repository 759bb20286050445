using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// A layer's per-sample Jacobian J (n × p_l, rows vec(gᵢ)) for layers that are not rank-one — Kronecker layers applied
/// at T &gt; 1 positions (sequences, shared layers, Embedding, Conv2d) and elementwise layers (LayerNorm, BatchNorm) —
/// as the three operations TENGraD needs: J Jᵀ, J g and Jᵀ u, never forming J for Kronecker layers.
/// </summary>
/// <remarks>
/// Kronecker layers, gᵢ = Σₜ δᵢₜ āᵢₜᵀ (ā n × T × in', δ n × T × out):
/// <code>
///   (J Jᵀ)ᵢⱼ = Σₜ Σᵤ (āᵢₜ · āⱼᵤ)(δᵢₜ · δⱼᵤ)        (nT × nT Gram–Hadamard product, summed over position pairs)
///   (J g)ᵢ   = Σₜ δᵢₜᵀ g āᵢₜ
///   Jᵀ u     = Σᵢ Σₜ uᵢ δᵢₜ āᵢₜᵀ
/// </code>
/// For an Embedding, āᵢₜ · āⱼᵤ = [kᵢₜ = kⱼᵤ] comes from the token indices, and J g, Jᵀ u are gathers and
/// scatter-adds over the token columns (<see cref="TokenGradients"/>): nothing V-wide per position. Cost O((nT)² (in' + out))
/// and O((nT)²) memory for the Gram. Elementwise layers form J explicitly (p_l = 2 · features is small).
/// </remarks>
internal sealed class LayerJacobian
{
    private readonly Tensor? _a, _d, _j, _tokens;
    private readonly long _n;
    private readonly LayerStatistics _statistics;

    public LayerJacobian(LayerStatistics statistics)
    {
        _statistics = statistics;
        _n = statistics.SampleCount;
        if (!statistics.Adapter.IsKronecker)
        {
            _j = statistics.PerSampleGradients().reshape(_n, -1);
            Gram = _j.mm(_j.t());
            return;
        }
        _d = statistics.FlatOutputGradients();               // n × T × out
        long t = _d.size(1);
        var dFlat = _d.reshape(_n * t, -1);
        Tensor kA;
        if (statistics.PairedTokens() is { } tokens)
        {
            _tokens = tokens;                                 // n × T
            var k = tokens.reshape(-1);
            kA = k.unsqueeze(1).eq(k.unsqueeze(0)).to_type(_d.dtype);
        }
        else
        {
            _a = statistics.PairedActivations();             // n × T × in'
            var aFlat = _a.reshape(_n * t, -1);
            kA = aFlat.mm(aFlat.t());
        }
        Gram = (kA * dFlat.mm(dFlat.t())).reshape(_n, t, _n, t).sum(new long[] { 1, 3 });
    }

    /// <summary>J Jᵀ (n × n).</summary>
    public Tensor Gram { get; }

    /// <summary>J g for a W̄-shaped g: length n.</summary>
    public Tensor Multiply(Tensor g) =>
        _j is not null ? _j.mv(g.flatten())
        : _tokens is not null ? TokenGradients.Multiply(_tokens, _d!, g)
        : (_d!.MatMul(g) * _a!).sum(new long[] { 1, 2 });

    /// <summary>Jᵀ u for u of length n, W̄-shaped like <paramref name="like"/>.</summary>
    public Tensor TransposeMultiply(Tensor u, Tensor like)
    {
        if (_j is not null) return _j.t().mv(u).reshape(like.Sizes());
        if (_tokens is not null) return TokenGradients.TransposeMultiply(_tokens, _d!, u, like.size(1));
        long t = _a!.size(1);
        return (_d! * u.reshape(-1, 1, 1)).reshape(_n * t, -1).t().mm(_a.reshape(_n * t, -1));
    }

    /// <summary>J itself (n × p_l); tests and small layers only.</summary>
    public Tensor Dense() => _j ?? _statistics.PerSampleGradients().reshape(_n, -1);
}
