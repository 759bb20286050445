using static TorchSharp.torch;

namespace NaturalGradient.Distributed;

/// <summary>How <see cref="ICommunicator.AllReduce"/> combines the ranks' tensors.</summary>
public enum ReduceOperation
{
    /// <summary>Element-wise sum over ranks.</summary>
    Sum,

    /// <summary>Element-wise sum over ranks divided by <see cref="ICommunicator.Size"/>.</summary>
    Average,
}

/// <summary>
/// The collective operations data-parallel training needs, on the memory of tensors (no staging copies): every
/// rank calls the same operations in the same order with tensors of the same dtype and shape (except where a
/// method says otherwise).
/// </summary>
/// <remarks>
/// Tensors must be contiguous CPU tensors of dtype float32, float64 or int64; anything else throws
/// <see cref="ArgumentException"/> before any communication. A failed MPI call throws <see cref="MpiException"/>
/// naming the call. Implementations: <see cref="SingleProcess"/> (size 1, no communication, MPI never loaded) and
/// <see cref="MpiCommunicator"/> (OpenMPI).
/// </remarks>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's index, 0 ≤ Rank &lt; Size.</summary>
    int Rank { get; }

    /// <summary>Number of processes in the job.</summary>
    int Size { get; }

    /// <summary>True for rank 0 (the rank that writes checkpoints and reports).</summary>
    bool IsRoot => Rank == 0;

    /// <summary>Replaces <paramref name="tensor"/> in place by the sum (or average) of every rank's tensor.</summary>
    void AllReduce(Tensor tensor, ReduceOperation operation = ReduceOperation.Sum);

    /// <summary>Overwrites <paramref name="tensor"/> on every rank with rank <paramref name="root"/>'s.</summary>
    void Broadcast(Tensor tensor, int root = 0);

    /// <summary>
    /// Concatenates every rank's <paramref name="input"/> along dimension 0, in rank order, into a new tensor.
    /// The ranks' inputs may differ in their first dimension (their other dimensions must agree).
    /// </summary>
    /// <returns>(Σ rows) × (the input's other dimensions), same dtype.</returns>
    Tensor AllGather(Tensor input);

    /// <summary>Returns when every rank has called it.</summary>
    void Barrier();

    /// <summary>Wall time this process has spent inside collective calls (waiting for the other ranks included); zero without MPI.</summary>
    TimeSpan CommunicationTime => TimeSpan.Zero;
}
