using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// The Grams of rank-one layers whose rows share one shape (n, in', out), formed together: the rows stacked once,
/// K_k = (Ā_kĀ_kᵀ) ∘ (D_kD_kᵀ) (seed 000 eq 41) for all of them by two batched products and one product in place, and
/// the stacked rows kept for the same step's batched Jᵀu (<see cref="TransposeProducts"/>) and the Grams read by the
/// push-through solve (<see cref="SolveBatch"/>). For b layers of one shape the Grams take five kernels (two stacks,
/// two batched products, one product in place) instead of three a layer, the batched Jᵀu stacks no rows of its own,
/// and where the solve uses tensor operations the Grams' copy into float64 is one kernel instead of one a layer. Layers
/// small enough for <see cref="RowGram"/> (the figure-5 nets' 20-unit layers) form their Grams one by one on the
/// calling thread instead: there a two-thread GEMM costs more than its arithmetic.
/// </summary>
public sealed partial class TengradBlock
{
    /// <summary>
    /// The stacked rows and Grams of the layers of one shape: <paramref name="Activations"/> b × n × in',
    /// <paramref name="OutputGradients"/> b × n × out, <paramref name="Grams"/> b × n × n, entry k that of
    /// <paramref name="Members"/>[k]. Lives in the dispose scope of the update that formed it, like the statistics.
    /// </summary>
    private sealed record GramBatch(TengradBlock[] Members, Tensor Activations, Tensor OutputGradients, Tensor Grams);

    /// <summary>The batch this block's Gram was formed in (null: formed alone), and its index there.</summary>
    private GramBatch? _gramBatch;
    private int _gramIndex;

    private static long _batchedGrams;

    /// <summary>How many Grams in this process were formed in a batch with other layers' (for tests of the dispatch).</summary>
    internal static long BatchedGrams => Interlocked.Read(ref _batchedGrams);

    /// <summary>
    /// <see cref="ICurvatureBlock.Update"/> for several TENGraD blocks at once (each with its own layer's statistics): the
    /// rank-one layers' Grams are formed after all rows are taken, those of the layers sharing (n, in', out), dtype
    /// and device by one batched product (<see cref="GramBatch"/>) unless <see cref="RowGram"/> takes them, the others
    /// one by one. Each block ends as after
    /// its own <see cref="Update"/>: the same Gram, to rounding (a batched GEMM may sum in another order).
    /// </summary>
    /// <param name="updates">The blocks with the statistics of their layers.</param>
    internal static void UpdateAll(IReadOnlyList<(TengradBlock Block, LayerStatistics Statistics)> updates)
    {
        try
        {
            foreach (var (block, statistics) in updates) block.UpdateRows(statistics);
        }
        finally
        {
            FormGrams(updates.Select(u => u.Block).Where(b => b._a is not null && b._gram is null));   // also when a later block threw
        }
    }

    /// <summary>The Grams of <paramref name="pending"/> (rank-one blocks with rows and no Gram yet), those of one shape batched.</summary>
    private static void FormGrams(IEnumerable<TengradBlock> pending)
    {
        foreach (var group in pending.GroupBy(b => (b._a!.size(0), b._a!.size(1), b._d!.size(1), b._a!.dtype, b._a!.device.ToString())))
        {
            var members = group.ToArray();
            if (members.Length == 1 || RowGram.Applies(members[0]._a!, members[0]._d!))
            {
                foreach (var member in members) member.FormOwnGram();
                continue;
            }
            var a = stack(members.Select(b => b._a!).ToArray());                      // b × n × in'
            var d = stack(members.Select(b => b._d!).ToArray());                      // b × n × out
            var grams = a.bmm(a.transpose(1, 2)).mul_(d.bmm(d.transpose(1, 2)));     // b × n × n, eq 41
            var batch = new GramBatch(members, a, d, grams);
            for (int k = 0; k < members.Length; k++)
            {
                members[k].SetGram(grams[k]);
                members[k]._gramBatch = batch;
                members[k]._gramIndex = k;
            }
            Interlocked.Add(ref _batchedGrams, members.Length);
        }
    }

    /// <summary>
    /// The <see cref="GramBatch"/> whose members are exactly <paramref name="blocks"/>[<paramref name="start"/>, start + its size), in its order, or null.
    /// </summary>
    private static GramBatch? BatchAt(IReadOnlyList<TengradBlock> blocks, int start)
    {
        if (blocks[start]._gramBatch is not { } batch || blocks[start]._gramIndex != 0 || start + batch.Members.Length > blocks.Count) return null;
        for (int j = 0; j < batch.Members.Length; j++)
            if (!ReferenceEquals(blocks[start + j], batch.Members[j]) || blocks[start + j]._gramBatch != batch
                || blocks[start + j]._form != MetricForm.Uncentered) return null;   // a centred block keeps P K P, not batch.Grams[j]
        return batch;
    }
}
