using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.Kfac;

public sealed partial class KfacBlock : ICurvatureBlockState
{
    /// <summary>
    /// Writes the running averages A and G, the eigenbasis, the factored inverses with their λ, π, whether the
    /// inverses are due, and the refresh count.
    /// </summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        ThrowIfDisposed();
        _a.ExportState(prefix + "activation_factor", state);
        _g.ExportState(prefix + "output_gradient_factor", state);
        _eigen.ExportState(prefix, state);
        _inverse.ExportState(prefix, state);
        state.Numbers[prefix + "inverse_due"] = _inverseDue ? 1 : 0;
        state.Numbers[prefix + "pi"] = _pi;
        state.Numbers[prefix + "inverse_refresh_count"] = InverseRefreshCount;
    }

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        ThrowIfDisposed();
        long inputs = Layer.InputDim, outputs = Layer.OutputDim;
        var activationShape = DiagonalActivation.Shape(Layer);
        _a.ImportState(prefix + "activation_factor", state, activationShape);
        _g.ImportState(prefix + "output_gradient_factor", state, new[] { outputs, outputs });
        _eigen.ImportState(prefix, state, inputs, outputs);
        _inverse.ImportState(prefix, state, activationShape, outputs);
        _inverseDue = state.GetNumber(prefix + "inverse_due") != 0;
        _pi = state.GetNumber(prefix + "pi");
        InverseRefreshCount = checked((int)state.GetNumber(prefix + "inverse_refresh_count"));
    }
}
