using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.Kfac;

public sealed partial class KroneckerSumBlock : ICurvatureBlockState
{
    /// <summary>
    /// Writes the four running averages, what the last refresh kept (eigh of A₁ and G₁, G₂, A₂, π), whether the inverse is
    /// due and the refresh count. The λ-dependent part is rebuilt from what was kept at the next Precondition.
    /// </summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        ThrowIfDisposed();
        _a1.ExportState(prefix + "direct_activation_factor", state);
        _g1.ExportState(prefix + "direct_output_gradient_factor", state);
        _g2.ExportState(prefix + "transposed_output_gradient_factor", state);
        _a2.ExportState(prefix + "transposed_activation_factor", state);
        _g2Kept.ExportState(prefix + "refreshed_transposed_output_gradient_factor", state);
        _a2Kept.ExportState(prefix + "refreshed_transposed_activation_factor", state);
        _direct.ExportState(prefix + "direct_", state);
        state.Numbers[prefix + "inverse_due"] = _inverseDue ? 1 : 0;
        state.Numbers[prefix + "pi"] = _pi;
        state.Numbers[prefix + "inverse_refresh_count"] = InverseRefreshCount;
    }

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        ThrowIfDisposed();
        long inputs = Layer.InputDim, rows = Layer.OutputDim;
        _a1.ImportState(prefix + "direct_activation_factor", state, new[] { inputs, inputs });
        _g1.ImportState(prefix + "direct_output_gradient_factor", state, new[] { rows, rows });
        _g2.ImportState(prefix + "transposed_output_gradient_factor", state, new[] { rows });
        _a2.ImportState(prefix + "transposed_activation_factor", state, new[] { inputs, inputs });
        _g2Kept.ImportState(prefix + "refreshed_transposed_output_gradient_factor", state, new[] { rows });
        _a2Kept.ImportState(prefix + "refreshed_transposed_activation_factor", state, new[] { inputs, inputs });
        _direct.ImportState(prefix + "direct_", state, inputs, rows);
        _inverse.Dispose();
        _inverseDue = state.GetNumber(prefix + "inverse_due") != 0;
        _pi = state.GetNumber(prefix + "pi");
        InverseRefreshCount = checked((int)state.GetNumber(prefix + "inverse_refresh_count"));
    }
}
