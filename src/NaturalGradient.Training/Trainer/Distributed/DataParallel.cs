using NaturalGradient.Distributed;
using NaturalGradient.Fisher;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training;

/// <summary>
/// Data-parallel training over a communicator: rank r takes rows [⌊m r / N⌋, ⌊m (r+1) / N⌋) of every global batch
/// of m rows, and its gradients and curvature statistics are made those of the global batch, so every rank takes
/// the step one process takes on the global batch.
/// </summary>
/// <remarks>
/// Per step: the parameters' gradients are weighted by m_r / m and sum-allreduced (in place, one call per
/// parameter tensor); each layer's statistics, activations (m_r × T × in') and output gradients (s × m_r × T × out),
/// are gathered in rank order (never per-example Jacobians) and their weight rescaled from m_r to m; the reported
/// loss is the global batch's mean. See docs/DISTRIBUTED.md for the bytes this moves.
/// </remarks>
public sealed class DataParallel : IDataParallelReducer
{
    /// <param name="communicator">The job's communicator (not owned).</param>
    public DataParallel(ICommunicator communicator)
    {
        Communicator = communicator ?? throw new ArgumentNullException(nameof(communicator));
    }

    /// <summary>The job's communicator.</summary>
    public ICommunicator Communicator { get; }

    /// <summary>Rows of the current global batch (m).</summary>
    public long GlobalRows { get; private set; }

    /// <summary>Rows of this rank's shard of the current global batch (m_r).</summary>
    public long LocalRows { get; private set; }

    /// <summary>The rows [start, start + count) of a global batch of <paramref name="rows"/> that rank <paramref name="rank"/> of <paramref name="size"/> takes.</summary>
    public static (long Start, long Count) ShardRange(long rows, int rank, int size)
    {
        long start = rows * rank / size, end = rows * (rank + 1) / size;
        return (start, end - start);
    }

    /// <summary>This rank's shard of the global batch (views, no copy); records m and m_r for the step.</summary>
    public (Tensor X, Tensor Y) Shard(Tensor x, Tensor y)
    {
        var (start, count) = ShardRange(x.shape[0], Communicator.Rank, Communicator.Size);
        GlobalRows = x.shape[0];
        LocalRows = count;
        return (x.narrow(0, start, count), y.narrow(0, start, count));
    }

    /// <inheritdoc/>
    public void ReduceGradients(IReadOnlyList<Tensor> gradients)
    {
        double share = Share;
        using var _ = no_grad();
        foreach (var g in gradients)
        {
            if (share != 1) g.mul_(share);
            Communicator.AllReduce(g, ReduceOperation.Sum);
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<LayerStatistics> ReduceStatistics(IReadOnlyList<LayerStatistics> local)
    {
        var result = new List<LayerStatistics>(local.Count);
        foreach (var s in local)
        {
            var activations = Communicator.AllGather(s.Activations.contiguous());
            // s × m_r × T × out → m_r × s × T × out (a view when s = 1), gathered along the examples, and back.
            var gradients = s.Samples == 1
                ? Communicator.AllGather(s.OutputGradients.squeeze(0).contiguous()).unsqueeze(0)
                : Communicator.AllGather(s.OutputGradients.transpose(0, 1).contiguous()).transpose(0, 1);
            result.Add(new LayerStatistics(s.Adapter, activations, gradients, s.Weight * s.BatchSize / activations.shape[0]));
        }
        return result;
    }

    /// <summary>The global batch's mean loss from this shard's mean loss (one scalar allreduce).</summary>
    public double ReduceLoss(double localMean)
    {
        using var t = tensor(new[] { localMean * LocalRows }, ScalarType.Float64);
        Communicator.AllReduce(t, ReduceOperation.Sum);
        return t.ToDouble() / GlobalRows;
    }

    private double Share => GlobalRows == 0 ? 1 : (double)LocalRows / GlobalRows;
}
