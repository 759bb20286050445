using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.Kfac;

internal sealed partial class KroneckerEigenbasis
{
    /// <summary>Stores Q_A (not for a diagonal A), eᴬ, Q_G and eᴳ under <paramref name="prefix"/> (nothing before the first refresh).</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        if (_qg is null) return;
        if (_qa is not null) state.SetTensor(prefix + "activation_basis", _qa);
        state.SetTensor(prefix + "activation_eigenvalues", _ea!);
        state.SetTensor(prefix + "output_gradient_basis", _qg!);
        state.SetTensor(prefix + "output_gradient_eigenvalues", _eg!);
    }

    /// <summary>Takes the basis stored under <paramref name="prefix"/> for a layer with W̄ of shape out × in'.</summary>
    public void ImportState(string prefix, NaturalGradientStateDict state, long inputs, long outputs)
    {
        Dispose();
        if (!state.HasTensor(prefix + "output_gradient_basis")) return;
        _qa = IsDiagonalActivation ? null : state.GetTensor(prefix + "activation_basis", new[] { inputs, inputs });
        _ea = state.GetTensor(prefix + "activation_eigenvalues", new[] { inputs });
        _qg = state.GetTensor(prefix + "output_gradient_basis", new[] { outputs, outputs });
        _eg = state.GetTensor(prefix + "output_gradient_eigenvalues", new[] { outputs });
    }
}
