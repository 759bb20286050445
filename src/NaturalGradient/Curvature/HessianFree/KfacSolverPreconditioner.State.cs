using NaturalGradient.Capture;
using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.HessianFree;

public sealed partial class KfacSolverPreconditioner : ICurvatureState
{
    /// <summary>Writes the K-FAC blocks' state (factors, eigenbases or inverses, counters).</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state) => _blocks.ExportState(prefix, state);

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state, IReadOnlyList<ILayerAdapter> layers) =>
        _blocks.ImportState(prefix, state, layers);
}
