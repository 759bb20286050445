using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.Kfac;

public sealed partial class EkfacBlock : ICurvatureBlockState
{
    /// <summary>Writes the running averages A, G and S, the eigenbasis, π of the factored damping and the refresh count.</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        ThrowIfDisposed();
        _a.ExportState(prefix + "activation_factor", state);
        _g.ExportState(prefix + "output_gradient_factor", state);
        _s.ExportState(prefix + "scaling", state);
        _eigen.ExportState(prefix, state);
        state.Numbers[prefix + "inverse_refresh_count"] = InverseRefreshCount;
        state.Numbers[prefix + "pi"] = _pi;
    }

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        ThrowIfDisposed();
        long inputs = Layer.InputDim, outputs = Layer.OutputDim;
        _a.ImportState(prefix + "activation_factor", state, DiagonalActivation.Shape(Layer));
        _g.ImportState(prefix + "output_gradient_factor", state, new[] { outputs, outputs });
        _s.ImportState(prefix + "scaling", state, new[] { outputs, inputs });
        _eigen.ImportState(prefix, state, inputs, outputs);
        InverseRefreshCount = checked((int)state.GetNumber(prefix + "inverse_refresh_count"));
        _pi = state.GetNumber(prefix + "pi");
    }
}
