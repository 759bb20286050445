using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Blocks;

/// <summary>
/// The mean-gradient push-through solves of several layers at once: their n × n systems stacked into one batched
/// Cholesky and solve, their checks read with one host read.
/// </summary>
public sealed partial class TengradBlock
{
    private static long _batchedPushThroughSolves;

    /// <summary>How many layer solves in this process were solved in a batch with other layers (for tests of the dispatch).</summary>
    internal static long BatchedPushThroughSolves => Interlocked.Read(ref _batchedPushThroughSolves);

    /// <summary>
    /// <see cref="PreconditionMeanGradient(LayerStatistics, double, bool)"/> for every block of <paramref name="blocks"/>
    /// (null: not a TENGraD block, or statistics of another layer) with the statistics and damping of the same index,
    /// for the blocks that take the push-through route, grouped by n and the Gram's dtype: each group's
    /// systems w_l K_l + λ_l I (b × n × n, float64) are factored and solved for u_l = (w_l K_l + λ_l I)⁻¹ c_l·1 (on the
    /// CPU for n ≤ 256 one system at a time while it is in cache, <see cref="DampedGramSystems"/>; otherwise by one
    /// batched Cholesky and solve), Δ_l = J_lᵀ u_l is formed per layer, and the Cholesky infos, the rounding bounds
    /// √n ε Σᵢ |u_lᵢ| ‖J_lᵢ‖ and the norms ‖Δ_l‖ of all of them are read together, one host read instead of one per layer.
    /// The same per-layer decisions as the single solve follow from them; a layer whose checks fail is remembered as
    /// rejected at its λ exactly as there (with its factor for eq 40), so the caller's own solve of that layer goes
    /// straight to the other solves. Entries are null where the caller solves the layer itself: not eligible, or rejected.
    /// Cost: the single solves' kernels, with b − 1 fewer of each per-system kernel (dispatch matters for small layers:
    /// the figure-5 nets' 20-unit layers take microseconds per kernel).
    /// </summary>
    /// <param name="blocks">Per layer, its block, or null to leave the layer to the caller.</param>
    /// <param name="statistics">Per layer, the statistics of the last update (the solve applies only to the block's own).</param>
    /// <param name="dampings">Per layer, λ_l &gt; 0.</param>
    /// <param name="innerProduct">Also ⟨Δ_l, ḡ_l⟩ = w_l·1ᵀK_l u_l (as the single solve).</param>
    internal static MeanGradientDirection?[] PreconditionMeanGradients(IReadOnlyList<TengradBlock?> blocks, IReadOnlyList<LayerStatistics> statistics,
        IReadOnlyList<double> dampings, bool innerProduct)
    {
        var results = new MeanGradientDirection?[blocks.Count];
        var eligible = Enumerable.Range(0, blocks.Count).Where(i => blocks[i] is { } b && b.PushesMeanGradient(statistics[i], dampings[i]));
        foreach (var group in eligible.GroupBy(i => (blocks[i]!._gram!.size(0), blocks[i]!._gram!.dtype)))
        {
            var members = group.ToArray();
            var solved = SolveBatch(members.Select(i => blocks[i]!).ToArray(), members.Select(i => statistics[i].Weight).ToArray(),
                members.Select(i => dampings[i]).ToArray(), innerProduct);
            for (int k = 0; k < members.Length; k++) results[members[k]] = solved[k];
        }
        return results;
    }

    /// <summary>Whether the mean-gradient push-through solve applies to <paramref name="statistics"/> at λ (the conditions of <see cref="PreconditionMeanGradient(LayerStatistics, double, bool)"/>).</summary>
    private bool PushesMeanGradient(LayerStatistics statistics, double damping) =>
        _gram is not null && RoutesMeanGradient(statistics, damping) && _general is null && _form != MetricForm.Centered
        && _pushThroughRejectedAt != damping;

    /// <summary>Whether the mean-gradient route applies at all: <paramref name="statistics"/> are the last update's own, with one sample per example, and λ &gt; 0.</summary>
    private bool RoutesMeanGradient(LayerStatistics statistics, double damping) =>
        ReferenceEquals(statistics, _statistics) && statistics.Samples == 1 && damping > 0;

    /// <summary>The push-through solves of <paramref name="blocks"/> (eligible, one n and Gram dtype) for their statistics' mean gradients.</summary>
    private static MeanGradientDirection?[] SolveBatch(TengradBlock[] blocks, double[] c, double[] dampings, bool innerProduct)
    {
        int b = blocks.Length;
        long n = blocks[0]._gram!.size(0);
        using var scope = NewDisposeScope();
        foreach (var block in blocks) Interlocked.Increment(ref _pushThroughFactorizations);
        var weights = blocks.Select(block => block._weight).ToArray();
        var gramsInOrder = GramsOf(blocks);
        if (DampedGramSystems.Applies(gramsInOrder))
        {
            // On the CPU: each system formed from its Gram, factored and solved in one pass while it is in cache; the
            // infos and bounds come back as host values, so only the norms of Δ are read.
            var system = blocks[0].BatchSystem(b, n);
            var (info, u, rowBounds, onesKu) = DampedGramSystems.Solve(gramsInOrder, weights, dampings, c, system);
            var inner = innerProduct ? tensor(onesKu.Select((value, k) => value * c[k]).ToArray()) : null;
            var (deltas, normValues) = TransposeProductsFromHost(blocks, u, (int)n);
            return Accept(blocks, dampings, n, system.mT, Array.ConvertAll(info, i => (double)i), rowBounds, normValues, deltas,
                Enumerable.Range(0, b).ToArray(), inner, scope);
        }
        else
        {
            var (factor, info, u, rowBound, inner) = SolveWithTensors(blocks, gramsInOrder, weights, dampings, c, innerProduct);
            var uRows = u.InDtype(blocks[0]._a!.dtype);   // the group shares the Gram's dtype, and with it the rows'
            var (deltas, norms, normAt) = TransposeProducts(blocks, uRows);
            // cat promotes the int32 infos and the norms (the rows' dtype) to float64 with the bounds: no conversions of its own.
            var read = HostRead.Doubles(cat(new[] { info, rowBound }.Concat(norms).ToArray()));
            return Accept(blocks, dampings, n, factor, read[..b], read[b..(2 * b)], read[(2 * b)..], deltas, normAt, inner, scope);
        }
    }

    /// <summary>
    /// The solves of a batch that pass their checks (info 0, the rounding bound), as directions moved out of
    /// <paramref name="scope"/>; the others are recorded as rejected on their blocks (null entries).
    /// </summary>
    private static MeanGradientDirection?[] Accept(TengradBlock[] blocks, double[] dampings, long n, Tensor factor, double[] infos,
        double[] rowBounds, double[] normValues, Tensor[] deltas, int[] normAt, Tensor? inner, DisposeScope scope)
    {
        int b = blocks.Length;
        var results = new MeanGradientDirection?[b];
        for (int k = 0; k < b; k++)
        {
            var block = blocks[k];
            if (infos[k] != 0) { block.Rejected(dampings[k]); continue; }
            if (!RoundingBoundHolds(n, block._a!.dtype, rowBounds[k], normValues[normAt[k]]))
            {
                block.Rejected(dampings[k], scope.MoveToOuter(factor[k].clone()));   // factor is a view of a kept buffer
                continue;
            }
            Interlocked.Increment(ref _pushThroughSolves);
            Interlocked.Increment(ref _meanGradientSolves);
            if (b > 1) Interlocked.Increment(ref _batchedPushThroughSolves);
            results[k] = new MeanGradientDirection(scope.MoveToOuter(deltas[k]), inner is null ? null : scope.MoveToOuter(inner[k]));
        }
        return results;
    }

    /// <summary>The Grams of <paramref name="blocks"/> in order: views of the Grams of a batch formed together, or each block's own.</summary>
    private static Tensor[] GramsOf(TengradBlock[] blocks)
    {
        var grams = new Tensor[blocks.Length];
        for (int k = 0; k < blocks.Length;)
        {
            if (BatchAt(blocks, k) is { } formed)
            {
                for (int j = 0; j < formed.Members.Length; j++) grams[k + j] = formed.Grams[j];
                k += formed.Members.Length;
            }
            else
            {
                grams[k] = blocks[k]._gram!;
                k++;
            }
        }
        return grams;
    }

    /// <summary>
    /// The batch's systems w_k K_k + λ_k I by tensor operations, for Grams that <see cref="DampedGramSystems"/> does not
    /// take (another device, or n above <see cref="SmallCholesky.MaxOrder"/>): formed in float64 in the kept workspace,
    /// factored, solved for c_k·1, with Σᵢ |u_ki| ‖J_ki‖ and, if asked, 1ᵀK_k u_k · c_k.
    /// </summary>
    private static (Tensor Factor, Tensor Info, Tensor U, Tensor RowBound, Tensor? Inner) SolveWithTensors(TengradBlock[] blocks,
        Tensor[] gramsInOrder, double[] weights, double[] dampings, double[] c, bool innerProduct)
    {
        int b = blocks.Length;
        long n = gramsInOrder[0].size(0);
        // The Grams and the systems go into buffers the group's first block keeps: b × n × n float64 tensors made anew on
        // every step made the allocator return and map pages each step (the depth-8 figure-5 net's step 2.5× longer).
        var (grams, system) = blocks[0].BatchWorkspace(b, n);                                                     // b × n × n
        for (int k = 0; k < b;)                                                                                    // into float64
        {
            if (BatchAt(blocks, k) is { } formed)
            {
                grams.narrow(0, k, formed.Members.Length).copy_(formed.Grams);   // the Grams formed together: one copy
                k += formed.Members.Length;
            }
            else
            {
                grams[k].copy_(gramsInOrder[k]);
                k++;
            }
        }
        // One w, λ and c for the whole group (global damping, one likelihood: the usual case) as scalars, no tensor of
        // them; the same float64 products either way.
        bool uniform = weights.All(w => w == weights[0]) && dampings.All(l => l == dampings[0]) && c.All(x => x == c[0]);
        system.copy_(grams);
        if (uniform)
        {
            system.mul_(weights[0]).diagonal(0, -2, -1).add_(dampings[0]);
        }
        else
        {
            system.mul_(Column(weights, 3));
            system.diagonal(0, -2, -1).add_(Column(dampings, 2));
        }
        var rhs = uniform ? blocks[0].BatchRightHandSide(b, n).fill_(c[0]) : Column(c, 3).expand(b, n, 1);
        var (factor, info) = SmallCholesky.Factor(system, overwrite: true);
        var u = CholeskySolve.Apply(factor, rhs).squeeze(2);                                                      // b × n
        var kii = grams.diagonal(0, -2, -1);                                                                      // ‖J_lᵢ‖²
        var rowBound = u.abs().mul_(kii.clamp_min(0).sqrt_()).sum(1);
        var inner = innerProduct ? grams.bmm(u.unsqueeze(2)).squeeze(2).sum(1).mul_(Column(c, 1)) : null;
        return (factor, info, u, rowBound, inner);
    }

    /// <summary>
    /// Δ_k = J_kᵀu_k (eq 43) and ‖Δ_k‖ for every block of a batch, from u on the host (b · n, u_k from entry k · n): on
    /// the calling thread by <see cref="RowTransposeProduct"/> for the blocks whose rows it takes (the figure-5 nets'
    /// layers: no tensor of u, no GEMM on two threads, no norm to read), by the tensor form of
    /// <see cref="TransposeProducts(TengradBlock[], Tensor)"/> for the others, their norms read together.
    /// </summary>
    private static (Tensor[] Deltas, double[] Norms) TransposeProductsFromHost(TengradBlock[] blocks, double[] u, int n)
    {
        int b = blocks.Length;
        var deltas = new Tensor[b];
        var norms = new double[b];
        var others = new List<int>();
        for (int k = 0; k < b; k++)
        {
            var block = blocks[k];
            if (block._general is null && block._form == MetricForm.Uncentered && RowTransposeProduct.Applies(block._d!, block._a!))
            {
                (deltas[k], double squares) = RowTransposeProduct.Multiply(block._d!, block._a!, u.AsSpan(k * n, n));
                norms[k] = Math.Sqrt(squares);
            }
            else
            {
                others.Add(k);
            }
        }
        if (others.Count == 0) return (deltas, norms);
        var rest = others.Select(k => blocks[k]).ToArray();
        var rows = tensor(others.SelectMany(k => u.Skip(k * n).Take(n)).ToArray()).reshape(others.Count, n).InDtype(rest[0]._a!.dtype);
        var (restDeltas, restNorms, normAt) = TransposeProducts(rest, rows);
        var read = HostRead.Doubles(restNorms.Count == 1 ? restNorms[0] : cat(restNorms.ToArray()));
        for (int j = 0; j < others.Count; j++)
        {
            deltas[others[j]] = restDeltas[j];
            norms[others[j]] = read[normAt[j]];
        }
        return (deltas, norms);
    }

    /// <summary>
    /// Δ_k = J_kᵀu_k = (D_k ∘ u_k1ᵀ)ᵀĀ_k (eq 43) for every block of a batch, and ‖Δ_k‖: the blocks whose rows have one
    /// shape (in', out) take one batched product, (Dᵀ ∘ u)·Ā over the stacked rows, and one batched norm; a block of a
    /// shape of its own takes its own product and norm, as in the single solve. For b layers of one shape: three kernels
    /// and a copy of the rows instead of three kernels a layer.
    /// </summary>
    /// <returns>The Δ_k (b × out × in' views for the batched shapes); the norms as tensors to concatenate, and for each
    /// block k the position of ‖Δ_k‖ in that concatenation.</returns>
    private static (Tensor[] Deltas, List<Tensor> Norms, int[] NormAt) TransposeProducts(TengradBlock[] blocks, Tensor uRows)
    {
        int b = blocks.Length;
        var deltas = new Tensor[b];
        var norms = new List<Tensor>();
        var normAt = new int[b];
        var single = new List<Tensor>();
        var singleAt = new List<int>();
        int next = 0;
        foreach (var shape in Enumerable.Range(0, b).GroupBy(k => (blocks[k]._a!.size(1), blocks[k]._d!.size(1))))
        {
            var members = shape.ToArray();
            if (members.Length == 1)
            {
                int k = members[0];
                deltas[k] = blocks[k].JTu(uRows[k], blocks[k]._a!);
                single.Add(deltas[k].norm());
                singleAt.Add(k);
                continue;
            }
            bool contiguous = members[^1] - members[0] == members.Length - 1;
            var u = members.Length == b ? uRows
                : contiguous ? uRows.narrow(0, members[0], members.Length)
                : uRows.index_select(0, tensor(members.Select(k => (long)k).ToArray(), device: uRows.device));
            // The rows as the Grams' batch stacked them, when these blocks are that batch; stacked here otherwise.
            var formed = contiguous && BatchAt(blocks, members[0]) is { } batch && batch.Members.Length == members.Length ? batch : null;
            var products = (formed is not null
                    ? formed.OutputGradients.transpose(1, 2).mul(u.unsqueeze(1))
                    : stack(members.Select(k => blocks[k]._dT!).ToArray()).mul_(u.unsqueeze(1)))                // b' × out × n
                .bmm(formed?.Activations ?? stack(members.Select(k => blocks[k]._a!).ToArray()));               // b' × out × in'
            norms.Add(linalg.vector_norm(products.flatten(1), dims: new long[] { 1 }));
            for (int j = 0; j < members.Length; j++)
            {
                deltas[members[j]] = products[j];
                normAt[members[j]] = next + j;
            }
            next += members.Length;
        }
        if (single.Count > 0)
        {
            norms.Add(stack(single.ToArray()));
            for (int j = 0; j < singleAt.Count; j++) normAt[singleAt[j]] = next + j;
        }
        return (deltas, norms, normAt);
    }

    private readonly KeptBuffer _batchGrams = new(), _batchSystem = new(), _batchRightHandSide = new();

    /// <summary>A b × n × 1 float64 buffer for <see cref="SolveBatch"/>'s uniform right-hand side c·1 (filled by the caller), kept as the workspace is.</summary>
    private Tensor BatchRightHandSide(long b, long n)
    {
        ReadOnlySpan<long> shape = stackalloc long[] { b, n, 1 };
        return _batchRightHandSide.Get(shape, ScalarType.Float64, _gram!.device);
    }

    /// <summary>
    /// Two b × n × n float64 buffers for <see cref="SolveBatch"/> when this block heads a group (the Grams and the
    /// systems), kept across steps and made again only when b, n or the device change (<see cref="KeptBuffer"/>).
    /// Released by <see cref="Dispose"/>.
    /// </summary>
    private (Tensor Grams, Tensor System) BatchWorkspace(long b, long n)
    {
        var device = _gram!.device;
        ReadOnlySpan<long> shape = stackalloc long[] { b, n, n };
        return (_batchGrams.Get(shape, ScalarType.Float64, device), _batchSystem.Get(shape, ScalarType.Float64, device));
    }

    /// <summary>The b × n × n float64 system buffer of <see cref="BatchWorkspace"/> alone, for <see cref="DampedGramSystems.Solve"/>.</summary>
    private Tensor BatchSystem(long b, long n)
    {
        ReadOnlySpan<long> shape = stackalloc long[] { b, n, n };
        return _batchSystem.Get(shape, ScalarType.Float64, _gram!.device);
    }

    /// <summary>The Gram buffer of <see cref="BatchWorkspace"/> (kept only by batches that <see cref="DampedGramSystems"/> does not take), or null (for tests).</summary>
    internal Tensor? BatchGramBuffer => _batchGrams.Current;

    /// <summary>The system buffer that both <see cref="BatchSystem"/> and <see cref="BatchWorkspace"/> keep, or null (for tests of its reuse).</summary>
    internal Tensor? BatchSystemBuffer => _batchSystem.Current;


    /// <summary>The values as a float64 tensor of shape b × 1 × … × 1 (<paramref name="rank"/> dimensions), for broadcasting over a batch.</summary>
    private static Tensor Column(double[] values, int rank)
    {
        var shape = new long[rank];
        Array.Fill(shape, 1L);
        shape[0] = values.Length;
        return tensor(values, dtype: ScalarType.Float64).reshape(shape);
    }
}
