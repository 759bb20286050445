using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>
/// The inverses of the π-damped factors, (A + π√λ I)⁻¹ and (G + √λ/π I)⁻¹, remembered with the λ they were built
/// for, from Cholesky factorisations (<see cref="SafeCholesky"/>: float32 when the factors are float32, float64 and
/// jitter on failure) or from the factors' eigendecompositions (Q diag(1 / (e + shift)) Qᵀ). Applying them is two
/// matrix products, (G + √λ/π I)⁻¹ V (A + π√λ I)⁻¹ (Martens &amp; Grosse 2015 §6.3). For a diagonal A (a length-in'
/// vector, <see cref="DiagonalActivation"/>) its inverse is the vector 1 / (a + π√λ), applied as a column scaling. Owns its tensors.
/// With <see cref="KfacInversePrecision.Bfloat16"/> and float32 inverses, the products run on bfloat16 copies of them
/// (<see cref="Bfloat16Product"/>), made at the first application after each rebuild; a diagonal A's inverse stays a
/// float32 column scaling.
/// </summary>
internal sealed partial class FactoredInverse : IDisposable
{
    private readonly KfacInversePrecision _precision;
    private Tensor? _aInverse, _gInverse;
    private Tensor? _aLow, _gLow;   // bfloat16 copies of the inverses (Bfloat16 precision only)

    /// <param name="precision">Precision of the application's products (<see cref="KfacOptions.InversePrecision"/>).</param>
    public FactoredInverse(KfacInversePrecision precision = KfacInversePrecision.Model) => _precision = precision;

    public bool HasValue => _aInverse is not null;

    /// <summary>The damping λ the current inverses were built for (NaN before the first build).</summary>
    public double Damping { get; private set; } = double.NaN;

    /// <summary>Rebuilds both inverses from Cholesky factorisations of the damped factors A, G.</summary>
    public void RefreshCholesky(Tensor a, Tensor g, double damping) => FactorizationQueue.Run(queue => QueueCholesky(a, g, damping, queue));

    /// <summary>
    /// As <see cref="RefreshCholesky"/>, with the two factorisations added to <paramref name="queue"/> (side by side with
    /// other blocks'); the inverses are replaced, and then <paramref name="then"/> called, when the queue runs. π is read
    /// now; A and G must not be written before the queue runs.
    /// </summary>
    public void QueueCholesky(Tensor a, Tensor g, double damping, FactorizationQueue queue, Action? then = null)
    {
        double pi;
        using (NewDisposeScope()) pi = FactoredDamping.Pi(a, g);
        var (shiftA, shiftG) = FactoredDamping.Shifts(pi, damping);
        queue.Add(new (Tensor, Func<Tensor[]>)[] { (a, () => [CholeskyInverse(a, shiftA)]), (g, () => [CholeskyInverse(g, shiftG)]) }, results =>
        {
            using (NewDisposeScope()) Keep(results[0][0], results[1][0], damping);
            then?.Invoke();
        });
    }

    /// <summary>Rebuilds both inverses from the eigendecompositions of A and G (no factorisation: two products each).</summary>
    public void RefreshEigen(KroneckerEigenbasis eigen, double pi, double damping)
    {
        using var scope = NewDisposeScope();
        var (shiftA, shiftG) = FactoredDamping.Shifts(pi, damping);
        Keep(eigen.IsDiagonalActivation ? DiagonalActivation.DampedInverse(eigen.ActivationEigenvalues, shiftA)
                 : EigenInverse(eigen.ActivationBasis, eigen.ActivationEigenvalues, shiftA),
             EigenInverse(eigen.OutputGradientBasis, eigen.OutputGradientEigenvalues, shiftG), damping);
    }

    /// <summary>(G + √λ/π I)⁻¹ V (A + π√λ I)⁻¹ for a W̄-shaped V.</summary>
    public Tensor Apply(Tensor v)
    {
        if (_aInverse is null || _gInverse is null) throw new InvalidOperationException("the inverses have not been computed yet");
        using var scope = NewDisposeScope();
        if (LowPrecision(v))
        {
            var left = Bfloat16Product.Of(GLow, v);                                    // out × in'
            // A diagonal A (an Embedding's token counts) is a column scaling, kept in float32: no GEMM to gain.
            return scope.MoveToOuter(_aInverse.dim() == 1
                ? DiagonalActivation.RightMultiply(left.to_type(v.dtype), _aInverse)
                : Bfloat16Product.Of(left, ALow).to_type(v.dtype));
        }
        return scope.MoveToOuter(DiagonalActivation.RightMultiply(_gInverse.mm(v), _aInverse));
    }

    /// <summary>[(A + π√λ I)⁻¹, (G + √λ/π I)⁻¹] as fresh contiguous copies (the caller owns them).</summary>
    public IEnumerable<Tensor> Export()
    {
        if (_aInverse is null || _gInverse is null) throw new InvalidOperationException("the inverses have not been computed yet");
        return new[] { _aInverse.contiguous().clone(), _gInverse.contiguous().clone() };
    }

    /// <summary>Takes copies of the first two of <paramref name="parts"/> as the inverses built for <paramref name="damping"/>.</summary>
    public void Import(IReadOnlyList<Tensor> parts, double damping)
    {
        using var scope = NewDisposeScope();
        Keep(parts[0].clone(), parts[1].clone(), damping);
    }

    /// <summary>
    /// (G + √λ/π I)⁻¹ ḡ (A + π√λ I)⁻¹ for ḡ = w DᵀĀ, as w PᵀQ with P = D (G + √λ/π I)⁻ᵀ (m × out) and
    /// Q = Ā (A + π√λ I)⁻¹ (m × in'), from D (m × out) and Ā (m × in'). With <paramref name="innerProduct"/>, also
    /// ⟨Δ, ḡ⟩ = w² Σ (P Dᵀ) ∘ (Q Āᵀ) (two m × m Grams; a float64 scalar tensor), else null.
    /// </summary>
    public (Tensor Direction, Tensor? InnerProduct) ApplyToMeanGradient(Tensor d, Tensor a, double weight, bool innerProduct = false)
    {
        if (_aInverse is null || _gInverse is null) throw new InvalidOperationException("the inverses have not been computed yet");
        // A diagonal A (a token layer) is not offered this route (KroneckerFactors.MeanGradientRows): dense A⁻¹ only.
        if (_aInverse.dim() != 2) throw new InvalidOperationException("the mean-gradient route needs a dense A⁻¹");
        using var scope = NewDisposeScope();
        Tensor left, right, direction;
        double innerScale;   // what ⟨Δ, ḡ⟩'s Gram sum still needs: w² less the w that P already carries
        if (LowPrecision(d))
        {
            // The inverses are symmetric: D G⁻ᵀ = D G⁻¹ (the bfloat16 copy of G⁻¹ is used as it is).
            left = Bfloat16Product.Of(d, GLow);                                    // m × out
            right = Bfloat16Product.Of(a, ALow);                                   // m × in'
            direction = left.t().mm(right).to_type(d.dtype).mul_(weight);
            innerScale = weight * weight;
        }
        else
        {
            // Formed transposed, Pᵀ = G⁻¹Dᵀ and Qᵀ = A⁻ᵀĀᵀ (square × width × m): MKL splits these over two threads far
            // better than the m-row products D G⁻ᵀ and Ā A⁻¹ (in' = 785, m = 256: about 1.7 against 2.3 ms; the bench's
            // `perf --part kernels`, R Āᵀ against Ā R). w scales Pᵀ (out × m), the smaller operand, not the product.
            var leftT = _gInverse.mm(d.t()).mul_(weight);
            var rightT = _aInverse.t().mm(a.t());
            direction = leftT.mm(rightT.t());
            (left, right) = (leftT.t(), rightT.t());
            innerScale = weight;
        }
        if (!innerProduct) return (scope.MoveToOuter(direction), null);
        // ⟨PᵀQ, DᵀĀ⟩ = Σⱼₖ (P Dᵀ)ⱼₖ (Q Āᵀ)ⱼₖ: the Grams in the operands' dtype (float32 for the bfloat16 products), their
        // element-wise product in float64 (m² entries: cheap), so that the product of two large Gram entries cannot
        // overflow float32.
        var grams = left.InDtype(d.dtype).mm(d.t()).to_type(ScalarType.Float64).mul_(right.InDtype(a.dtype).mm(a.t()).to_type(ScalarType.Float64));
        var inner = grams.sum().mul_(innerScale);
        return (scope.MoveToOuter(direction), scope.MoveToOuter(inner));
    }

    /// <summary>
    /// True when this application runs on the bfloat16 copies: Bfloat16 precision and float32 operands and inverses. A
    /// diagonal A⁻¹ (a vector) stays a float32 column scaling; the G⁻¹ product still runs in bfloat16.
    /// </summary>
    private bool LowPrecision(Tensor operand) =>
        _precision == KfacInversePrecision.Bfloat16 && operand.dtype == ScalarType.Float32 && _gInverse!.dtype == ScalarType.Float32;

    private Tensor ALow => _aLow ??= Bfloat16Product.Copy(_aInverse!);

    private Tensor GLow => _gLow ??= Bfloat16Product.Copy(_gInverse!);

    private void Keep(Tensor aInverse, Tensor gInverse, double damping)
    {
        Dispose();   // also the bfloat16 copies of the previous inverses
        _aInverse = aInverse.DetachFromDisposeScope();
        _gInverse = gInverse.DetachFromDisposeScope();
        Damping = damping;
    }

    private static Tensor CholeskyInverse(Tensor factor, double shift)
    {
        if (factor.dim() == 1) return DiagonalActivation.DampedInverse(factor, shift);
        var damped = factor.clone();
        damped.diagonal().add_(shift);
        var l = SafeCholesky.Factor(damped);
        return cholesky_inverse(l).InDtype(factor.dtype);
    }

    private static Tensor EigenInverse(Tensor basis, Tensor values, double shift) =>
        basis.mul(values.add(shift).reciprocal_().unsqueeze(0)).mm(basis.t());

    public void Dispose()
    {
        _aInverse?.Dispose(); _gInverse?.Dispose(); _aLow?.Dispose(); _gLow?.Dispose();
        _aInverse = _gInverse = _aLow = _gLow = null;
        Damping = double.NaN;
    }
}
