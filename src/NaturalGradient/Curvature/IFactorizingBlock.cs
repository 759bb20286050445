using NaturalGradient.Fisher;
using NaturalGradient.Numerics;

namespace NaturalGradient.Curvature;

/// <summary>
/// A block whose dense factorisations (eigendecompositions, Cholesky inverses) can be gathered with other blocks' and run
/// side by side (<see cref="FactorizationQueue"/>): <see cref="BlockDiagonalCurvature"/> updates every such block into
/// one queue and runs it once, and before a solve queues every block's due inverses together.
/// </summary>
internal interface IFactorizingBlock
{
    /// <summary>
    /// As <see cref="ICurvatureBlock.Update"/>, with the factorisations the update needs added to
    /// <paramref name="queue"/>: the update is complete once the queue has run.
    /// </summary>
    void Update(LayerStatistics statistics, long step, FactorizationQueue queue);

    /// <summary>
    /// Adds to <paramref name="queue"/> the factorisations a solve with λ = <paramref name="damping"/> will need (none
    /// when its cached inverses are current); without this the solve makes them itself, one after another.
    /// </summary>
    void QueueSolve(double damping, FactorizationQueue queue);
}
