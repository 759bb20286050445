using static TorchSharp.torch;

namespace NaturalGradient.Distributed;

/// <summary>A job of one process: every collective is the identity (no copies, no MPI).</summary>
public sealed class SingleProcess : ICommunicator
{
    /// <summary>The one instance.</summary>
    public static SingleProcess Instance { get; } = new();

    private SingleProcess() { }

    /// <inheritdoc/>
    public int Rank => 0;

    /// <inheritdoc/>
    public int Size => 1;

    /// <inheritdoc/>
    public void AllReduce(Tensor tensor, ReduceOperation operation = ReduceOperation.Sum) => TensorBuffer.Check(tensor, "AllReduce");

    /// <inheritdoc/>
    public void Broadcast(Tensor tensor, int root = 0)
    {
        TensorBuffer.Check(tensor, "Broadcast");
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "the root must be a rank of the job (0 ≤ root < 1)");
    }

    /// <inheritdoc/>
    public Tensor AllGather(Tensor input)
    {
        TensorBuffer.Check(input, "AllGather");
        return input.alias();
    }

    /// <inheritdoc/>
    public void Barrier() { }

    /// <inheritdoc/>
    public void Dispose() { }
}
