using System.Runtime.InteropServices;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// The eigenbasis of a Kronecker block G ⊗ A: A = Q_A diag(eᴬ) Q_Aᵀ, G = Q_G diag(eᴳ) Q_Gᵀ, so that
/// G ⊗ A = (Q_G ⊗ Q_A) diag(eᴳ ⊗ eᴬ) (Q_G ⊗ Q_A)ᵀ (George et al. 2018 §3). In W̄-shaped (out × in') coordinates
/// the change of basis is V ↦ Q_Gᵀ V Q_A and back X ↦ Q_G X Q_Aᵀ; the eigenvalue products form the out × in' matrix
/// eᴳ eᴬᵀ. Owns its tensors (detached from dispose scopes, disposed on refresh and in <see cref="Dispose"/>).
/// </summary>
/// <remarks>
/// linalg.eigh runs in the factors' dtype (float32 for a float32 model: about half the time of float64) and is
/// retried in float64 when it fails. Eigenvalues below 0 (round-off of a PSD factor) are clamped to 0.
/// </remarks>
internal sealed partial class KroneckerEigenbasis : IDisposable
{
    private Tensor? _qa, _ea, _qg, _eg;

    public bool HasValue => _qa is not null;

    /// <summary>Q_A (in' × in'), eigenvectors of A as columns. Owned.</summary>
    public Tensor ActivationBasis => _qa ?? throw NotComputed();
    /// <summary>eᴬ (in'), ascending.</summary>
    public Tensor ActivationEigenvalues => _ea ?? throw NotComputed();
    /// <summary>Q_G (out × out).</summary>
    public Tensor OutputGradientBasis => _qg ?? throw NotComputed();
    /// <summary>eᴳ (out), ascending.</summary>
    public Tensor OutputGradientEigenvalues => _eg ?? throw NotComputed();

    /// <summary>Eigendecomposes both factors (replacing the previous basis).</summary>
    public void Refresh(Tensor a, Tensor g)
    {
        using var scope = NewDisposeScope();
        var (ea, qa) = Decompose(a);
        var (eg, qg) = Decompose(g);
        Dispose();
        _ea = ea.DetachFromDisposeScope();
        _qa = qa.DetachFromDisposeScope();
        _eg = eg.DetachFromDisposeScope();
        _qg = qg.DetachFromDisposeScope();
    }

    /// <summary>[Q_A, eᴬ, Q_G, eᴳ] as fresh contiguous copies (the caller owns them).</summary>
    public IEnumerable<Tensor> Export() =>
        new[] { ActivationBasis, ActivationEigenvalues, OutputGradientBasis, OutputGradientEigenvalues }.Select(t => t.contiguous().clone());

    /// <summary>Takes copies of [Q_A, eᴬ, Q_G, eᴳ] (the first four of <paramref name="parts"/>) as the basis.</summary>
    public void Import(IReadOnlyList<Tensor> parts)
    {
        using var scope = NewDisposeScope();
        var copies = parts.Take(4).Select(t => t.clone()).ToArray();
        Dispose();
        _qa = copies[0].DetachFromDisposeScope();
        _ea = copies[1].DetachFromDisposeScope();
        _qg = copies[2].DetachFromDisposeScope();
        _eg = copies[3].DetachFromDisposeScope();
    }

    /// <summary>Q_Gᵀ V Q_A for V of shape (… ×) out × in'.</summary>
    public Tensor Project(Tensor v)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(OutputGradientBasis.t().matmul(v).matmul(ActivationBasis));
    }

    /// <summary>Q_Gᵀ ḡ Q_A for ḡ = w DᵀĀ, as w (D Q_G)ᵀ(Ā Q_A), from D (m × out) and Ā (m × in').</summary>
    public Tensor ProjectMeanGradient(Tensor d, Tensor a, double weight)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(d.mm(OutputGradientBasis).t().mm(a.mm(ActivationBasis)).mul_(weight));
    }

    /// <summary>Q_G X Q_Aᵀ for X of shape out × in'.</summary>
    public Tensor Unproject(Tensor x)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(OutputGradientBasis.matmul(x).matmul(ActivationBasis.t()));
    }

    /// <summary>eᴳ eᴬᵀ (out × in'): the eigenvalues of G ⊗ A arranged like W̄.</summary>
    public Tensor EigenvalueProducts()
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(OutputGradientEigenvalues.unsqueeze(1).mul(ActivationEigenvalues.unsqueeze(0)));
    }

    /// <summary>(Q_G ⊗ Q_A) diag(vec D) (Q_G ⊗ Q_A)ᵀ for a W̄-shaped diagonal D: the dense p × p matrix.</summary>
    public Tensor Dense(Tensor diagonal)
    {
        using var scope = NewDisposeScope();
        var q = kron(OutputGradientBasis, ActivationBasis);
        return scope.MoveToOuter(q.mul(diagonal.reshape(1, -1)).mm(q.t()));
    }

    /// <summary>
    /// eigh in the factor's dtype (it reads one triangle); on failure (an exception from the solver or a non-finite
    /// result, checked with one host read) retried in float64 on the symmetrised factor. Results in the factor's dtype.
    /// </summary>
    internal static (Tensor Values, Tensor Vectors) Decompose(Tensor factor)
    {
        if (factor.dtype != ScalarType.Float64)
        {
            try
            {
                var (values, vectors) = linalg.eigh(factor);
                if (values.sum(ScalarType.Float64).add_(vectors.sum(ScalarType.Float64)).isfinite().item<bool>())
                    return (values.clamp_min_(0), vectors);
            }
            catch (ExternalException) { }
        }
        var sym = factor.to_type(ScalarType.Float64);
        sym = (sym + sym.t()).mul_(0.5);
        var (values64, vectors64) = NativeCall.Run($"eigendecomposition (eigh) of a {sym.shape[0]}×{sym.shape[0]} Kronecker factor",
            () => linalg.eigh(sym), "the factor holds ∞ or NaN or is too ill-conditioned: scale the inputs, raise the damping or use a float64 model");
        return (values64.clamp_min(0).to_type(factor.dtype), vectors64.to_type(factor.dtype));
    }

    private static InvalidOperationException NotComputed() =>
        new("the eigenbasis has not been computed yet: call Update with the layer's statistics first");

    public void Dispose()
    {
        _qa?.Dispose(); _ea?.Dispose(); _qg?.Dispose(); _eg?.Dispose();
        _qa = _ea = _qg = _eg = null;
    }
}
