namespace NaturalGradient.Curvature;

/// <summary>
/// A curvature of a data-parallel job that makes each process's statistics global itself (e.g. K-FAC with Kronecker
/// factors summed over processes and the inverse work split between them): the preconditioner hands it the statistics
/// of its own shard, unreduced, and agrees with the other processes through it on whether to use a batch.
/// </summary>
/// <remarks>Installed with <see cref="Preconditioning.NaturalGradientPreconditioner.Distribute"/>. Every process must call
/// every member in the same order (they communicate).</remarks>
public interface IDistributedCurvature : ICurvature
{
    /// <summary>True on every process when every process passes true (one collective).</summary>
    bool AllAgree(bool value);
}
