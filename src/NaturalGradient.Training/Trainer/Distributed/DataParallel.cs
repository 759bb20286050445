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
/// Per step: the parameters' gradients are weighted by m_r / m and sum-allreduced (one allreduce of all of them);
/// every layer's statistics, activations (m_r × T × in') and output gradients (s × m_r × T × out), are gathered in
/// rank order in one allgather (never per-example Jacobians) and their weight rescaled from m_r to m; the reported
/// loss is the global batch's mean (one scalar allreduce). See docs/DISTRIBUTED.md for the bytes this moves.
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
    /// <remarks>The gradients are packed into one buffer (one copy) so that a step costs one allreduce, not one per tensor.</remarks>
    public void ReduceGradients(IReadOnlyList<Tensor> gradients)
    {
        if (gradients.Count == 0) return;
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var flat = cat(gradients.Select(g => g.reshape(-1)).ToList());
        if (GlobalRows > 0 && LocalRows != GlobalRows) flat.mul_((double)LocalRows / GlobalRows);
        Communicator.AllReduce(flat, ReduceOperation.Sum);
        long offset = 0;
        foreach (var g in gradients)
        {
            g.copy_(flat.narrow(0, offset, g.numel()).view_as(g));
            offset += g.numel();
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Every layer's per-example rows (activations T·in', output gradients s·T·out) are packed side by side into one
    /// m_r × Σ(T·in' + s·T·out) buffer and gathered in one allgather; the global statistics are views of the result.
    /// An Embedding sends its T token indices instead of T·V one-hot values; a tied layer whose activations depend on
    /// the gradient sample sends s·T·in'.
    /// </remarks>
    public IReadOnlyList<LayerStatistics> ReduceStatistics(IReadOnlyList<LayerStatistics> local)
    {
        if (local.Count == 0) return local;
        long rows = local[0].BatchSize;
        var parts = new List<Tensor>(2 * local.Count);
        foreach (var s in local)
        {
            // Index layers send their token indices (exact as floats below 2²⁴), not one-hot rows; activations that depend
            // on the gradient sample (s × m_r × T × in', tied layers) go example-major like the output gradients.
            parts.Add(s.Tokens is { } tokens ? tokens.to_type(s.Dtype).reshape(rows, -1)
                : s.SampleDependentActivations ? s.Activations.transpose(0, 1).reshape(rows, -1)
                : s.Activations.reshape(rows, -1));
            // s × m_r × T × out → m_r × (s·T·out)
            parts.Add(s.OutputGradients.transpose(0, 1).reshape(rows, -1));
        }
        var gathered = Communicator.AllGather(cat(parts, dim: 1));
        long total = gathered.shape[0], column = 0;
        var result = new List<LayerStatistics>(local.Count);
        foreach (var s in local)
        {
            long a = parts[2 * result.Count].shape[1], g = parts[2 * result.Count + 1].shape[1];
            var activations = gathered.narrow(1, column, a);
            var gradients = gathered.narrow(1, column + a, g).reshape(total, s.Samples, s.Positions, -1).transpose(0, 1);
            column += a + g;
            double weight = s.Weight * s.BatchSize / total;
            var reduced = s.Tokens is not null
                ? LayerStatistics.FromTokens(s.Adapter, activations.reshape(total, s.Positions).to_type(ScalarType.Int64), gradients, weight)
                : s.SampleDependentActivations
                    ? new LayerStatistics(s.Adapter, activations.reshape(total, s.Samples, s.Positions, -1).transpose(0, 1), gradients, weight)
                        { TransposedPositions = s.TransposedPositions }
                    : new LayerStatistics(s.Adapter, activations.reshape(total, s.Positions, -1), gradients, weight);
            // The allreduced gradient is (1/M) Σ over every rank's rows.
            result.Add(reduced.WithGradientWeight(s.GradientWeight * s.BatchSize / total));
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

}
