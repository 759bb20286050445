using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

public sealed partial class EkfacBlock : IDistributedKroneckerBlock
{
    private bool _decompositionDue;

    /// <inheritdoc/>
    public KroneckerInverseState InversePart => KroneckerInverseState.Decomposition;

    /// <inheritdoc/>
    public bool DecompositionDue => _decompositionDue;

    /// <inheritdoc/>
    /// <remarks>S is not touched: after the basis is current, add the batch's S with <see cref="UpdateScaling"/>.</remarks>
    public void SetFactors(Tensor activationFactor, Tensor outputGradientFactor, long step)
    {
        ThrowIfDisposed();
        KroneckerBlockGuard.Factors(Layer, activationFactor, outputGradientFactor);
        bool first = !_s.HasValue;
        using (NewDisposeScope())
        {
            _a.Replace(activationFactor.detach().clone());
            _g.Replace(outputGradientFactor.detach().clone());
        }
        if (first || Options.InverseDue(step)) _decompositionDue = true;
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
    public bool DampedInverseDue(double damping) => false;

    /// <inheritdoc/>
    public void RefreshDampedInverse(double damping) { }

    /// <summary>
    /// This process's share of the batch's S: w Σₛ Σᵢ (Q_Gᵀ gᵢₛ Q_A)² over the examples of <paramref name="statistics"/>,
    /// in the current eigenbasis (out × in', the factors' dtype). Summed over processes (with w = 1/m) it is the batch's S.
    /// </summary>
    public Tensor ScalingContribution(LayerStatistics statistics)
    {
        ThrowIfDisposed();
        if (_decompositionDue || !_eigen.HasValue)
            throw new InvalidOperationException($"EKFAC block of layer '{Layer.Name}': the eigenbasis is not current");
        return ProjectedSecondMoments(statistics).to_type(Current(_a).dtype);
    }

    /// <summary>S ← <paramref name="batchScaling"/> (on the first update and when the basis changed, as Update restarts it) or β S + (1 − β) S_batch.</summary>
    public void UpdateScaling(Tensor batchScaling, bool restart)
    {
        ThrowIfDisposed();
        if (restart || !_s.HasValue)
        {
            using var scope = NewDisposeScope();
            _s.Replace(batchScaling.detach().clone());
        }
        else _s.Update(batchScaling, Options.FactorDecay);
    }

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> ExportInverse(KroneckerInverseState part)
    {
        ThrowIfDisposed();
        if (part != KroneckerInverseState.Decomposition || !_eigen.HasValue || _decompositionDue)
            throw new InvalidOperationException($"EKFAC block of layer '{Layer.Name}': no {part} to export");
        return _eigen.Export().Append(tensor(new[] { _pi, InverseRefreshCount }, ScalarType.Float64)).ToList();
    }

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> InverseBuffers(KroneckerInverseState part)
    {
        return _eigen.Buffers(Layer.InputDim, Layer.OutputDim, Current(_a).dtype).Append(empty(2, ScalarType.Float64)).ToList();
    }

    /// <inheritdoc/>
    public void ImportInverse(KroneckerInverseState part, IReadOnlyList<Tensor> tensors)
    {
        ThrowIfDisposed();
        var scalars = HostRead.Doubles(tensors[^1]);
        _eigen.Import(tensors);
        _pi = scalars[0];
        InverseRefreshCount = (int)scalars[1];
        _decompositionDue = false;
    }
}
