using NaturalGradient.Capture;
using NaturalGradient.Optim;
using NaturalGradient.Solvers;
using TorchSharp;

namespace NaturalGradient.Curvature.HessianFree;

public sealed partial class HessianFreeCurvature : ICurvatureState
{
    /// <summary>
    /// Writes the warm start of the next solve (the last solution, when the next solve would use it) and the
    /// product count. The metric batch itself is not state: every step brings its own.
    /// </summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        state.Numbers[prefix + "total_products"] = TotalProducts;
        _kfac?.ExportState(prefix + "kfac_preconditioner.", state);
        if (HasWarmStart)
            state.SetTensor(prefix + "warm_start", _solution);
    }

    /// <summary>Takes the warm start for the parameter layout of <paramref name="layers"/> (the layers the next steps cover).</summary>
    public void ImportState(string prefix, NaturalGradientStateDict state, IReadOnlyList<ILayerAdapter> layers)
    {
        long products = checked((long)state.GetNumber(prefix + "total_products"));
        torch.Tensor? solution = null;
        ParameterLayout? layout = null;
        if (state.HasTensor(prefix + "warm_start"))
        {
            layout = new ParameterLayout(layers);
            solution = state.GetTensor(prefix + "warm_start", new[] { layout.Count });
        }
        _kfac?.ImportState(prefix + "kfac_preconditioner.", state, layers);
        _product?.Dispose();
        _product = null;
        _solution?.Dispose();
        _solution = solution;
        _layout = layout;
        LastReport = null;
        _warmStartAfterFailure = false;
        TotalProducts = products;
    }
}
