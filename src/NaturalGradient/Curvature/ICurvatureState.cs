using NaturalGradient.Capture;
using NaturalGradient.Optim;

namespace NaturalGradient.Curvature;

/// <summary>
/// A curvature approximation whose state lives across steps (running averages, eigenbases, inverses, warm starts):
/// it exports that state to a <see cref="NaturalGradientStateDict"/> and imports it back, so that a run resumed from
/// the exported state takes the same steps as one that never stopped. Curvatures rebuilt from scratch on every
/// <see cref="ICurvature.Update"/> (exact, block, diagonal, TENGraD) need no state and do not implement this.
/// </summary>
public interface ICurvatureState
{
    /// <summary>Writes the state under keys starting with <paramref name="prefix"/>.</summary>
    void ExportState(string prefix, NaturalGradientStateDict state);

    /// <summary>Replaces the state with the one under <paramref name="prefix"/>.</summary>
    /// <param name="prefix">Key prefix used by <see cref="ExportState"/>.</param>
    /// <param name="state">The exported state.</param>
    /// <param name="layers">The covered layers, in model order (blocks are created for the layers the state names).</param>
    /// <exception cref="InvalidDataException">A key is missing or a tensor has the wrong shape.</exception>
    void ImportState(string prefix, NaturalGradientStateDict state, IReadOnlyList<ILayerAdapter> layers);
}

/// <summary>The per-layer counterpart of <see cref="ICurvatureState"/> for an <see cref="ICurvatureBlock"/>.</summary>
public interface ICurvatureBlockState
{
    /// <summary>Writes the block's state under keys starting with <paramref name="prefix"/>.</summary>
    void ExportState(string prefix, NaturalGradientStateDict state);

    /// <summary>Replaces the block's state with the one under <paramref name="prefix"/>.</summary>
    /// <exception cref="InvalidDataException">A key is missing or a tensor has the wrong shape.</exception>
    void ImportState(string prefix, NaturalGradientStateDict state);
}
