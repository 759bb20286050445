using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.Kfac;

internal sealed partial class FactoredInverse
{
    /// <summary>Stores both inverses and the λ they were built for (nothing before the first build).</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        if (_aInverse is null) return;
        state.SetTensor(prefix + "activation_inverse", _aInverse);
        state.SetTensor(prefix + "output_gradient_inverse", _gInverse!);
        state.Numbers[prefix + "inverse_damping"] = Damping;
    }

    /// <summary>
    /// Takes the inverses stored under <paramref name="prefix"/> for a layer with W̄ of shape out × in' whose A has
    /// <paramref name="activationShape"/> ([in'] for a diagonal A, [in', in'] otherwise).
    /// </summary>
    public void ImportState(string prefix, NaturalGradientStateDict state, long[] activationShape, long outputs)
    {
        Dispose();
        if (!state.HasTensor(prefix + "activation_inverse")) return;
        _aInverse = state.GetTensor(prefix + "activation_inverse", activationShape);
        _gInverse = state.GetTensor(prefix + "output_gradient_inverse", new[] { outputs, outputs });
        Damping = state.GetNumber(prefix + "inverse_damping");
    }
}
