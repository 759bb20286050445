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
/// <para>linalg.eigh runs in the factors' dtype (float32 for a float32 model: about half the time of float64) and is
/// retried in float64 when it fails; factors of power-of-two width from 256 up are decomposed one row and column wider,
/// where LAPACK runs faster (<see cref="SymmetricEigh"/>). Eigenvalues below 0 (round-off of a PSD factor) are clamped
/// to 0.</para>
/// <para>A diagonal A (an index layer's token counts, a length-in' vector: <see cref="DiagonalActivation"/>) has the
/// identity as its eigenbasis: no eigh, Q_A is not stored, eᴬ = a, and the change of basis is V ↦ Q_Gᵀ V and back
/// X ↦ Q_G X.</para>
/// <para>The changes of basis take <c>low: true</c> from a solve under <see cref="KfacInversePrecision.Bfloat16"/>: for a
/// float32 basis they then multiply by bfloat16 copies of Q_G and Q_A (<see cref="Bfloat16Product"/>, made at first use
/// after each refresh) and return float32; the metric products (<c>Multiply</c>) keep <c>low: false</c>.</para>
/// </remarks>
internal sealed partial class KroneckerEigenbasis : IDisposable
{
    private Tensor? _qa, _ea, _qg, _eg;
    private Tensor? _qaLow, _qgLow;   // bfloat16 copies of Q_A and Q_G (bfloat16 solves only)

    /// <param name="diagonalActivation">True when A is kept as its diagonal (the basis of A is then the identity).</param>
    public KroneckerEigenbasis(bool diagonalActivation = false) => IsDiagonalActivation = diagonalActivation;

    /// <summary>True when A is a diagonal (length in'): Q_A is the identity and is neither stored nor exported.</summary>
    public bool IsDiagonalActivation { get; }

    public bool HasValue => _qg is not null;

    /// <summary>
    /// Q_A (in' × in'), eigenvectors of A as columns. Owned. For a diagonal A the identity, formed on each access (a
    /// fresh tensor in the caller's scope: tests and small layers only).
    /// </summary>
    public Tensor ActivationBasis => IsDiagonalActivation
        ? eye(ActivationEigenvalues.size(0), dtype: ActivationEigenvalues.dtype, device: ActivationEigenvalues.device)
        : _qa ?? throw NotComputed();
    /// <summary>eᴬ (in'), ascending (for a diagonal A: a itself, in token order).</summary>
    public Tensor ActivationEigenvalues => _ea ?? throw NotComputed();
    /// <summary>Q_G (out × out).</summary>
    public Tensor OutputGradientBasis => _qg ?? throw NotComputed();
    /// <summary>eᴳ (out), ascending.</summary>
    public Tensor OutputGradientEigenvalues => _eg ?? throw NotComputed();

    /// <summary>Eigendecomposes both factors (replacing the previous basis); a diagonal A is taken as its own eigenvalues.</summary>
    public void Refresh(Tensor a, Tensor g) => FactorizationQueue.Run(queue => QueueRefresh(a, g, queue));

    /// <summary>
    /// As <see cref="Refresh"/>, with the eigendecompositions added to <paramref name="queue"/> (side by side with other
    /// blocks'); the basis is replaced, and then <paramref name="then"/> called, when the queue runs. A and G must not be
    /// written before that.
    /// </summary>
    public void QueueRefresh(Tensor a, Tensor g, FactorizationQueue queue, Action? then = null)
    {
        var parts = new List<(Tensor, Func<Tensor[]>)>(2);
        if (!IsDiagonalActivation) parts.Add((a, () => Pair(Decompose(a))));
        parts.Add((g, () => Pair(Decompose(g))));
        queue.Add(parts, results =>
        {
            Replace(a, results);
            then?.Invoke();   // in the caller's dispose scope
        });
    }

    private void Replace(Tensor a, Tensor[][] results)
    {
        using var scope = NewDisposeScope();
        var (ea, qa) = IsDiagonalActivation ? (a.clamp_min(0), (Tensor?)null) : (results[0][0], results[0][1]);
        var (eg, qg) = (results[^1][0], results[^1][1]);
        Dispose();
        _ea = ea.DetachFromDisposeScope();
        _qa = qa?.DetachFromDisposeScope();
        _eg = eg.DetachFromDisposeScope();
        _qg = qg.DetachFromDisposeScope();
    }

    private static Tensor[] Pair((Tensor Values, Tensor Vectors) d) => new[] { d.Values, d.Vectors };

    /// <summary>How many tensors <see cref="Export"/> gives: 4, or 3 for a diagonal A (no Q_A).</summary>
    public int ExportCount => IsDiagonalActivation ? 3 : 4;

    /// <summary>[Q_A, eᴬ, Q_G, eᴳ] ([eᴬ, Q_G, eᴳ] for a diagonal A) as fresh contiguous copies (the caller owns them).</summary>
    public IEnumerable<Tensor> Export() =>
        (IsDiagonalActivation ? new[] { ActivationEigenvalues, OutputGradientBasis, OutputGradientEigenvalues }
            : new[] { ActivationBasis, ActivationEigenvalues, OutputGradientBasis, OutputGradientEigenvalues }).Select(t => t.contiguous().clone());

    /// <summary>Empty tensors shaped like <see cref="Export"/>'s for a layer with W̄ of shape out × in'.</summary>
    public IEnumerable<Tensor> Buffers(long inputs, long outputs, ScalarType dtype)
    {
        var shapes = IsDiagonalActivation
            ? new[] { new[] { inputs }, new[] { outputs, outputs }, new[] { outputs } }
            : new[] { new[] { inputs, inputs }, new[] { inputs }, new[] { outputs, outputs }, new[] { outputs } };
        return shapes.Select(s => empty(s, dtype));
    }

    /// <summary>Takes copies of the first <see cref="ExportCount"/> of <paramref name="parts"/> (as <see cref="Export"/> gives them) as the basis.</summary>
    public void Import(IReadOnlyList<Tensor> parts)
    {
        using var scope = NewDisposeScope();
        var copies = parts.Take(ExportCount).Select(t => t.clone()).ToArray();
        int i = 0;
        Dispose();
        _qa = IsDiagonalActivation ? null : copies[i++].DetachFromDisposeScope();
        _ea = copies[i++].DetachFromDisposeScope();
        _qg = copies[i++].DetachFromDisposeScope();
        _eg = copies[i].DetachFromDisposeScope();
    }

    /// <summary>Q_Gᵀ V Q_A for V of shape (… ×) out × in' (Q_Gᵀ V for a diagonal A); <paramref name="low"/>: by bfloat16 GEMMs (see remarks).</summary>
    public Tensor Project(Tensor v, bool low = false)
    {
        using var scope = NewDisposeScope();
        if (Low(low, v))
        {
            var projected = Bfloat16Product.Of(OutputGradientBasisLow.t(), v);
            if (!IsDiagonalActivation) projected = projected.MatMul(ActivationBasisLow);
            return scope.MoveToOuter(projected.to_type(v.dtype));
        }
        var left = OutputGradientBasis.t().MatMul(v);
        return scope.MoveToOuter(IsDiagonalActivation ? left : left.MatMul(_qa!));
    }

    /// <summary>Q_Gᵀ ḡ Q_A for ḡ = w DᵀĀ, as w (D Q_G)ᵀ(Ā Q_A), from D (m × out) and Ā (m × in'); <paramref name="low"/>: by bfloat16 GEMMs.</summary>
    public Tensor ProjectMeanGradient(Tensor d, Tensor a, double weight, bool low = false)
    {
        using var scope = NewDisposeScope();
        if (Low(low, d))
            return scope.MoveToOuter(ProjectRows(d, output: true, low).t().mm(ProjectRows(a, output: false, low)).to_type(d.dtype).mul_(weight));
        // w scales D Q_G (m × out), the smaller operand, rather than the out × in' product.
        return scope.MoveToOuter(ProjectRows(d, output: true).mul_(weight).t().mm(ProjectRows(a, output: false)));
    }

    /// <summary>
    /// Rows projected onto a basis: D Q_G for output-gradient rows D (… × out) when <paramref name="output"/>, else Ā Q_A
    /// (Ā itself for a diagonal A) for activation rows Ā (… × in'). With <paramref name="low"/> and float32 rows, by a
    /// bfloat16 GEMM and returned in bfloat16 (the caller converts); otherwise in the rows' dtype. A fresh tensor except
    /// Ā itself (an alias) for a diagonal A. Rows of two dimensions (m × k) come as the transpose of Qᵀ Rowsᵀ (k × m,
    /// contiguous): MKL splits the square-by-width product over two threads far better than the m-row one (k = 785,
    /// m = 256: the bench's `perf --part kernels`, R Āᵀ against Ā R), and the products that read the projections
    /// (Pᵀ Q, the scaling's Gram) take the transposed view as it is.
    /// </summary>
    public Tensor ProjectRows(Tensor rows, bool output, bool low = false)
    {
        if (!output && IsDiagonalActivation) return Low(low, rows) ? Bfloat16Product.Low(rows) : rows.alias();
        if (Low(low, rows)) return Bfloat16Product.Of(rows, output ? OutputGradientBasisLow : ActivationBasisLow);
        var basis = output ? OutputGradientBasis : _qa!;
        return rows.dim() == 2 ? basis.t().mm(rows.t()).t() : rows.MatMul(basis);
    }

    /// <summary>Q_G X Q_Aᵀ for X of shape out × in' (Q_G X for a diagonal A); <paramref name="low"/>: by bfloat16 GEMMs (see remarks).</summary>
    public Tensor Unproject(Tensor x, bool low = false)
    {
        using var scope = NewDisposeScope();
        if (Low(low, x))
        {
            var back = Bfloat16Product.Of(OutputGradientBasisLow, x);
            if (!IsDiagonalActivation) back = back.MatMul(ActivationBasisLow.t());
            return scope.MoveToOuter(back.to_type(x.dtype));
        }
        var left = OutputGradientBasis.MatMul(x);
        return scope.MoveToOuter(IsDiagonalActivation ? left : left.MatMul(_qa!.t()));
    }

    /// <summary>
    /// True when a change of basis of <paramref name="operand"/> asked for in low precision runs by bfloat16 GEMMs (a
    /// float32 operand and basis), so that its result carries bfloat16's rounding.
    /// </summary>
    internal bool ChangesBasisInBfloat16(bool low, Tensor operand) => Low(low, operand);

    /// <summary>True when a change of basis asked for in low precision applies: a float32 operand and basis.</summary>
    private bool Low(bool low, Tensor operand) =>
        low && operand.dtype == ScalarType.Float32 && OutputGradientBasis.dtype == ScalarType.Float32;

    private Tensor OutputGradientBasisLow => _qgLow ??= Bfloat16Product.Copy(OutputGradientBasis);

    private Tensor ActivationBasisLow => _qaLow ??= Bfloat16Product.Copy(_qa!);

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
        var q = kron(OutputGradientBasis.contiguous(), ActivationBasis.contiguous());
        return scope.MoveToOuter(q.mul(diagonal.reshape(1, -1)).mm(q.t()));
    }

    /// <summary>
    /// eigh in the factor's dtype (it reads one triangle; power-of-two widths one wider, <see cref="SymmetricEigh"/>); on
    /// failure (an exception from the solver or a non-finite result, checked with one host read) retried in float64 on the
    /// symmetrised factor. Results in the factor's dtype.
    /// </summary>
    internal static (Tensor Values, Tensor Vectors) Decompose(Tensor factor)
    {
        if (factor.dtype != ScalarType.Float64)
        {
            try
            {
                var (values, vectors) = SymmetricEigh.Of(factor);
                if (values.sum(ScalarType.Float64).add_(vectors.sum(ScalarType.Float64)).isfinite().item<bool>())
                    return (values.clamp_min_(0), vectors);
            }
            catch (ExternalException) { }
        }
        var sym = factor.to_type(ScalarType.Float64);
        sym = (sym + sym.t()).mul_(0.5);
        var (values64, vectors64) = NativeCall.Run($"eigendecomposition (eigh) of a {sym.size(0)}×{sym.size(0)} Kronecker factor",
            () => SymmetricEigh.Of(sym), "the factor holds ∞ or NaN or is too ill-conditioned: scale the inputs, raise the damping or use a float64 model");
        return (values64.clamp_min(0).to_type(factor.dtype), vectors64.to_type(factor.dtype));
    }

    private static InvalidOperationException NotComputed() =>
        new("the eigenbasis has not been computed yet: call Update with the layer's statistics first");

    public void Dispose()
    {
        _qa?.Dispose(); _ea?.Dispose(); _qg?.Dispose(); _eg?.Dispose(); _qaLow?.Dispose(); _qgLow?.Dispose();
        _qa = _ea = _qg = _eg = _qaLow = _qgLow = null;
    }
}
