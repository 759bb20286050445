using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

public sealed partial class KfacBlock : IDistributedKroneckerBlock
{
    private bool _decompositionDue;

    /// <inheritdoc/>
    public KroneckerInverseState InversePart =>
        Options.InverseMethod == KfacInverseMethod.Cholesky ? KroneckerInverseState.DampedInverse : KroneckerInverseState.Decomposition;

    /// <inheritdoc/>
    public bool DecompositionDue => _decompositionDue;

    /// <inheritdoc/>
    public void SetFactors(Tensor activationFactor, Tensor outputGradientFactor, long step)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Factors(Layer, activationFactor, outputGradientFactor);
        bool first = !_a.HasValue;
        using (NewDisposeScope())
        {
            _a.Replace(activationFactor.detach().clone());
            _g.Replace(outputGradientFactor.detach().clone());
        }
        if (!first && !Options.InverseDue(step)) return;
        _inverseDue = true;
        if (Options.InverseMethod == KfacInverseMethod.Eigen) _decompositionDue = true;
    }

    /// <inheritdoc/>
    public void Decompose()
    {
        ThrowIfDisposed();
        using var scope = NewDisposeScope();
        _eigen.Refresh(Current(_a), Current(_g));
        _pi = FactoredDamping.Pi(_a.Value!, _g.Value!);
        InverseRefreshCount++;
        _decompositionDue = false;
    }

    /// <inheritdoc/>
    public bool DampedInverseDue(double damping) =>
        Options.InverseMethod == KfacInverseMethod.Cholesky && (_inverseDue || _inverse.Damping != damping);

    /// <inheritdoc/>
    public void RefreshDampedInverse(double damping)
    {
        ThrowIfDisposed();
        if (Options.InverseMethod != KfacInverseMethod.Cholesky) return;
        _inverse.RefreshCholesky(Current(_a), _g.Value!, damping);
        InverseRefreshCount++;
        _inverseDue = false;
    }

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> ExportInverse(KroneckerInverseState part)
    {
        ThrowIfDisposed();
        if (part == KroneckerInverseState.Decomposition)
        {
            if (!_eigen.HasValue || _decompositionDue)
                throw new InvalidOperationException($"K-FAC block of layer '{Layer.Name}': the eigendecomposition has not been computed");
            return _eigen.Export().Append(Scalars(_pi)).ToList();
        }
        if (!_inverse.HasValue || _inverseDue)
            throw new InvalidOperationException($"K-FAC block of layer '{Layer.Name}': the damped inverses have not been computed");
        return _inverse.Export().Append(Scalars(_inverse.Damping)).ToList();
    }

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> InverseBuffers(KroneckerInverseState part)
    {
        var dtype = Current(_a).dtype;
        long o = Layer.OutputDim;
        var tensors = part == KroneckerInverseState.Decomposition
            ? _eigen.Buffers(Layer.InputDim, o, dtype)
            : new[] { empty(DiagonalActivation.Shape(Layer), dtype), empty(new[] { o, o }, dtype) };
        return tensors.Append(empty(2, ScalarType.Float64)).ToList();
    }

    /// <inheritdoc/>
    public void ImportInverse(KroneckerInverseState part, IReadOnlyList<Tensor> tensors)
    {
        ThrowIfDisposed();
        var scalars = HostRead.Doubles(tensors[^1]);
        if (part == KroneckerInverseState.Decomposition)
        {
            _eigen.Import(tensors);
            _pi = scalars[0];
            _decompositionDue = false;
        }
        else
        {
            _inverse.Import(tensors, scalars[0]);
            _inverseDue = false;
        }
        InverseRefreshCount = (int)scalars[1];
    }

    /// <summary>[value, refresh count] as a float64 tensor (the scalars that travel with an inverse part).</summary>
    private Tensor Scalars(double value) => tensor(new[] { value, InverseRefreshCount }, ScalarType.Float64);
}
