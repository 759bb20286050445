using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Distributed;
using NaturalGradient.Fisher;
using NaturalGradient.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training;

/// <summary>How data-parallel K-FAC and EKFAC share their work between the ranks (docs/DISTRIBUTED.md).</summary>
public enum KfacDistribution
{
    /// <summary>
    /// Factors allreduced; each layer's inverse work (eigendecomposition or damped Cholesky inverses) computed by its
    /// owner rank and broadcast; every rank preconditions every layer (KAISA with gradient-worker fraction 1).
    /// </summary>
    InverseBroadcast,

    /// <summary>
    /// Factors allreduced; each layer's owner computes its inverse work and its preconditioned gradient, and broadcasts
    /// the preconditioned gradient (KAISA with gradient-worker fraction 1/N).
    /// </summary>
    GradientBroadcast,

    /// <summary>Every layer's per-example statistics gathered; every rank computes every factor and inverse.</summary>
    Replicated,
}

/// <summary>
/// Distributed K-FAC and EKFAC in the spirit of KAISA (Pauloski et al. 2021): every rank computes its shard's Kronecker
/// factors, the factors are summed over ranks (allreduce), and each layer's cubic work — the eigendecomposition
/// (eigen inverses, EKFAC) or the damped Cholesky inverses — is done by one owner rank
/// (<see cref="KroneckerWorkAssignment"/>) and broadcast, or the owner broadcasts the layer's preconditioned gradient
/// instead (<see cref="KfacDistribution"/>). Every rank then holds what one process would hold on the global batch,
/// so the steps equal the one-process steps to float round-off.
/// </summary>
/// <remarks>
/// <para>Per step, with N ranks and m_r of the global m examples on rank r:</para>
/// <list type="number">
/// <item>Factors: rank r's share c_r = (m_r/m)·(A_r, G_r) of the batch's factors (A_r, G_r from its shard) is folded into
/// a pending sum D_r ← β D_r + (1 − β) c_r (on the first update D_r = c_r); on sync steps one allreduce of every layer's
/// D_r gives A ← β^k A + Σ_r D_r (k factor updates since the last sync) — exactly the running average one process
/// keeps. Sync steps: the first, every <c>syncPeriod</c>-th and every inverse step (s mod T_inv = 0), so every
/// inverse sees the exact factors; between syncs the blocks hold the factors of the last sync.</item>
/// <item>Eigendecompositions due (K-FAC eigen, EKFAC): the owner computes them and broadcasts Q_A, eᴬ, Q_G, eᴳ, π (one
/// broadcast per owner and dtype) — to every rank in inverse mode, and for EKFAC also in gradient mode (every rank
/// projects its shard onto the basis for S).</item>
/// <item>EKFAC's S: on factor steps rank r's (m_r/m)·S_r in the current basis is summed over ranks (one allreduce).</item>
/// <item>Precondition: inverse mode — damped Cholesky inverses due (schedule or λ changed) are built by the owner and
/// broadcast, then every rank preconditions every layer; gradient mode — each owner preconditions its layers and
/// broadcasts Δ (one broadcast per owner).</item>
/// </list>
/// <para>Layers that are not Kronecker-factored (LayerNorm, BatchNorm) keep the one-process path: their statistics are
/// gathered and every rank updates their dense blocks. Checkpoints: <see cref="ExportState"/> is a collective (every
/// rank calls it); it writes the one-process curvature's state (pending factor sums folded in, and in gradient mode every
/// owner's inverse state shipped to all ranks first), so a checkpoint resumes on any N, one process included.</para>
/// </remarks>
public sealed class DistributedKroneckerCurvature : IDistributedCurvature, ICurvatureState
{
    private readonly BlockDiagonalCurvature _local;
    private readonly DataParallel _parallel;
    private readonly ICommunicator _comm;
    private readonly Dictionary<string, PendingFactors> _pending = new(StringComparer.Ordinal);
    private KroneckerWorkAssignment? _assignment;

    /// <param name="local">The one-process K-FAC or EKFAC curvature (owned from now on).</param>
    /// <param name="parallel">The job's data-parallel state (shard sizes, communicator).</param>
    /// <param name="mode"><see cref="KfacDistribution.InverseBroadcast"/> or <see cref="KfacDistribution.GradientBroadcast"/>.</param>
    /// <param name="syncPeriod">Allreduce the factors every this many steps (≥ 1; inverse steps always sync).</param>
    public DistributedKroneckerCurvature(BlockDiagonalCurvature local, DataParallel parallel, KfacDistribution mode, int syncPeriod)
    {
        _local = local ?? throw new ArgumentNullException(nameof(local));
        _parallel = parallel ?? throw new ArgumentNullException(nameof(parallel));
        if (mode == KfacDistribution.Replicated) throw new ArgumentOutOfRangeException(nameof(mode), mode, "the replicated mode gathers statistics and needs no distributed curvature");
        if (syncPeriod < 1) throw new ArgumentOutOfRangeException(nameof(syncPeriod), syncPeriod, $"the factor sync period must be ≥ 1, got {syncPeriod}");
        _comm = parallel.Communicator;
        Mode = mode;
        SyncPeriod = syncPeriod;
    }

    /// <summary>What the owners broadcast.</summary>
    public KfacDistribution Mode { get; }

    /// <summary>Factors are allreduced on steps s with s mod SyncPeriod = 0 (and on inverse steps).</summary>
    public int SyncPeriod { get; }

    /// <summary>Which rank owns which layer (after the first update).</summary>
    public KroneckerWorkAssignment? Assignment => _assignment;

    /// <inheritdoc/>
    public bool AllAgree(bool value)
    {
        using var flag = tensor(new[] { value ? 0L : 1L });
        _comm.AllReduce(flag);
        return flag.ToInt64() == 0;
    }

    /// <inheritdoc/>
    public void Update(CurvatureBatch batch)
    {
        using var scope = NewDisposeScope();
        long step = batch.Step;
        var kronecker = batch.Layers.Where(s => IsDistributed(s.Adapter)).ToList();
        var other = batch.Layers.Where(s => !IsDistributed(s.Adapter)).ToList();
        if (other.Count > 0)
            _local.Update(new CurvatureBatch(_parallel.ReduceStatistics(other), batch.Likelihood, null, step));
        if (kronecker.Count == 0) return;
        _assignment ??= new KroneckerWorkAssignment(kronecker.Select(s => s.Adapter).ToList(), _comm.Size);
        double share = (double)_parallel.LocalRows / _parallel.GlobalRows;

        // 1. This shard's factors into the pending sums; one allreduce of all of them on sync steps.
        bool sync = step % SyncPeriod == 0;
        var blocks = new List<IDistributedKroneckerBlock>(kronecker.Count);
        var firsts = new List<bool>(kronecker.Count);
        foreach (var stats in kronecker)
        {
            var block = Block(stats.Adapter);
            var o = block.Options;
            bool first = !block.IsInitialized;
            blocks.Add(block);
            firsts.Add(first);
            sync |= first || step % o.InverseUpdatePeriod!.Value == 0;   // resolved by the block
            if (first || step % o.FactorUpdatePeriod == 0)
                Pending(stats.Adapter.Name).Add(
                    KroneckerFactors.ActivationFactor(stats, o.WeightSharing).mul_(share),
                    KroneckerFactors.OutputGradient(stats, o.WeightSharing).mul_(share), o.FactorDecay, first);
        }
        if (sync) SyncFactors(blocks, step);

        // 2. Eigendecompositions due: the owner computes, and ships them where they are needed.
        var decompose = blocks.Where(b => b.DecompositionDue).ToList();
        foreach (var b in decompose.Where(b => Owner(b) == _comm.Rank)) b.Decompose();
        ShipInverse(decompose.Where(b => Mode == KfacDistribution.InverseBroadcast || b is EkfacBlock).ToList(), KroneckerInverseState.Decomposition);

        // 3. EKFAC's S: this shard's second moments in the current basis, summed over ranks.
        var scaling = new List<(EkfacBlock Block, LayerStatistics Stats, bool Restart)>();
        for (int i = 0; i < blocks.Count; i++)
        {
            if (blocks[i] is not EkfacBlock e) continue;
            // As EkfacBlock.Update: S restarts in a new basis even on a step whose factors are not due.
            bool first = firsts[i], basisChanged = first || step % e.Options.InverseUpdatePeriod!.Value == 0;
            if (basisChanged || step % e.Options.FactorUpdatePeriod == 0) scaling.Add((e, kronecker[i], basisChanged));
        }
        if (scaling.Count > 0)
        {
            var sums = AllReduceSum(scaling.Select(x => x.Block.ScalingContribution(x.Stats).mul_(share)).ToList());
            for (int i = 0; i < scaling.Count; i++) scaling[i].Block.UpdateScaling(sums[i], scaling[i].Restart);
        }
    }

    /// <summary>A ← carry·A + Σ_r D_r for every layer (one allreduce), then the blocks' inverse schedule for <paramref name="step"/>.</summary>
    private void SyncFactors(IReadOnlyList<IDistributedKroneckerBlock> blocks, long step)
    {
        var parts = new List<Tensor>(2 * blocks.Count);
        foreach (var b in blocks)
        {
            var p = Pending(b.Layer.Name);
            var dtype = b.IsInitialized ? b.ActivationFactor.dtype : p.A?.dtype ?? ScalarType.Float32;
            parts.Add(p.A ?? zeros(DiagonalActivation.Shape(b.Layer), dtype));
            parts.Add(p.G ?? zeros(new[] { b.Layer.OutputDim, b.Layer.OutputDim }, dtype));
        }
        var sums = AllReduceSum(parts);
        for (int i = 0; i < blocks.Count; i++)
        {
            var b = blocks[i];
            var p = Pending(b.Layer.Name);
            Tensor a = sums[2 * i], g = sums[2 * i + 1];
            if (p.Carry != 0 && b.IsInitialized)
            {
                a = b.ActivationFactor.mul(p.Carry).add_(a);
                g = b.OutputGradientFactor.mul(p.Carry).add_(g);
            }
            b.SetFactors(a, g, step);
            p.Reset();
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping)
    {
        var lambdas = _local.LayerDampings(layers, damping);
        var owned = new bool[layers.Count];
        var distributed = new List<int>();
        for (int i = 0; i < layers.Count; i++)
        {
            if (!IsDistributed(layers[i])) continue;
            distributed.Add(i);
            owned[i] = Owner(layers[i].Name) == _comm.Rank;
        }
        var result = new Tensor[layers.Count];
        if (Mode == KfacDistribution.InverseBroadcast)
        {
            var due = distributed.Where(i => Block(layers[i]).DampedInverseDue(lambdas[i])).ToList();
            foreach (var i in due.Where(i => owned[i])) Block(layers[i]).RefreshDampedInverse(lambdas[i]);
            ShipInverse(due.Select(i => Block(layers[i])).ToList(), KroneckerInverseState.DampedInverse);
            for (int i = 0; i < layers.Count; i++) result[i] = _local.Block(layers[i].Name).Precondition(gradients[i], lambdas[i]);
            return result;
        }
        // Gradient broadcast: the owner preconditions, every other rank receives Δ.
        for (int i = 0; i < layers.Count; i++)
        {
            if (!IsDistributed(layers[i]) || owned[i]) result[i] = _local.Block(layers[i].Name).Precondition(gradients[i], lambdas[i]);
            else result[i] = empty_like(gradients[i]).contiguous();
        }
        for (int rank = 0; rank < _comm.Size; rank++)
        {
            int root = rank;
            var mine = distributed.Where(i => Owner(layers[i].Name) == root).Select(i => result[i].contiguous()).ToList();
            var shipped = Broadcast(mine, root);
            int j = 0;
            foreach (var i in distributed.Where(i => Owner(layers[i].Name) == root)) result[i] = shipped[j++];
        }
        return result;
    }

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors) => _local.Multiply(layers, vectors);

    /// <inheritdoc/>
    public Tensor QuadraticForm(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors) => _local.QuadraticForm(layers, vectors);

    /// <summary>
    /// Writes the one-process curvature's state (every rank must call this: in gradient mode it first ships every
    /// owner's inverse state to all ranks, and pending factor sums are summed over ranks and folded into the written factors).
    /// </summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        using var scope = NewDisposeScope();
        var blocks = _assignment is null ? new List<IDistributedKroneckerBlock>()
            : _pending.Keys.Select(n => (IDistributedKroneckerBlock)_local.Block(n)).Where(b => b.IsInitialized).OrderBy(b => b.Layer.Name, StringComparer.Ordinal).ToList();
        if (Mode == KfacDistribution.GradientBroadcast)
        {
            // The owner's inverse state, on every rank (K-FAC eigen: only the owner decomposed; Cholesky: only the owner inverted).
            ShipInverse(blocks.Where(b => b.InversePart == KroneckerInverseState.Decomposition && b is KfacBlock).ToList(), KroneckerInverseState.Decomposition);
            ShipInverse(blocks.Where(b => b.InversePart == KroneckerInverseState.DampedInverse).ToList(), KroneckerInverseState.DampedInverse);
        }
        _local.ExportState(prefix, state);
        if (!blocks.Any(b => Pending(b.Layer.Name).HasContributions)) return;
        // Fold Σ_r D_r into the written factors (the live factors stay those of the last sync, so the run itself is unchanged).
        var parts = new List<Tensor>();
        foreach (var b in blocks)
        {
            var p = Pending(b.Layer.Name);
            parts.Add(p.A ?? zeros_like(b.ActivationFactor));
            parts.Add(p.G ?? zeros_like(b.OutputGradientFactor));
        }
        var sums = AllReduceSum(parts);
        for (int i = 0; i < blocks.Count; i++)
        {
            var b = blocks[i];
            var p = Pending(b.Layer.Name);
            // Keys of RunningAverage.ExportState under the block's prefix (KfacBlock/EkfacBlock.ExportState).
            state.SetTensor($"{prefix}{b.Layer.Name}.activation_factor", b.ActivationFactor.mul(p.Carry).add_(sums[2 * i]));
            state.SetTensor($"{prefix}{b.Layer.Name}.output_gradient_factor", b.OutputGradientFactor.mul(p.Carry).add_(sums[2 * i + 1]));
        }
    }

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradientStateDict state, IReadOnlyList<ILayerAdapter> layers)
    {
        _local.ImportState(prefix, state, layers);
        foreach (var p in _pending.Values) p.Reset();
    }

    /// <summary>
    /// True for the layers whose factors are allreduced and whose inverse work is owned (K-FAC and EKFAC blocks); the
    /// others — not Kronecker-factored, or a tensor tied in transposed layouts (<see cref="KroneckerSumBlock"/>) — are
    /// preconditioned on every rank from gathered statistics.
    /// </summary>
    private static bool IsDistributed(ILayerAdapter layer) => layer.IsKronecker && layer is not TiedLayerAdapter { KroneckerFactored: false };

    private IDistributedKroneckerBlock Block(ILayerAdapter layer)
    {
        _ = Pending(layer.Name);
        return _local.GetOrCreate(layer) as IDistributedKroneckerBlock
            ?? throw new InvalidOperationException($"layer '{layer.Name}': distributed K-FAC needs a Kronecker block (K-FAC or EKFAC)");
    }

    private int Owner(IDistributedKroneckerBlock block) => Owner(block.Layer.Name);

    private int Owner(string layer) =>
        _assignment?.Owner(layer) ?? throw new InvalidOperationException("no layer has been assigned yet: call Update first");

    private PendingFactors Pending(string layer)
    {
        if (!_pending.TryGetValue(layer, out var p)) _pending[layer] = p = new PendingFactors();
        return p;
    }

    /// <summary>Each owner's <paramref name="part"/> of its blocks in <paramref name="blocks"/>, broadcast to every rank and imported there.</summary>
    private void ShipInverse(IReadOnlyList<IDistributedKroneckerBlock> blocks, KroneckerInverseState part)
    {
        if (blocks.Count == 0) return;
        using var scope = NewDisposeScope();
        for (int root = 0; root < _comm.Size; root++)
        {
            int r = root;
            var owned = blocks.Where(b => Owner(b) == r).ToList();
            if (owned.Count == 0) continue;
            bool sending = r == _comm.Rank;
            var tensors = owned.Select(b => sending ? b.ExportInverse(part) : b.InverseBuffers(part)).ToList();
            Broadcast(tensors.SelectMany(t => t).ToList(), r);
            if (!sending)
                for (int i = 0; i < owned.Count; i++) owned[i].ImportInverse(part, tensors[i]);
        }
    }

    /// <summary>
    /// Broadcasts <paramref name="tensors"/> from <paramref name="root"/>: on the root they are sent, elsewhere they are
    /// overwritten (same shapes and dtypes on every rank). One packed buffer per dtype. Returns the tensors.
    /// </summary>
    private IReadOnlyList<Tensor> Broadcast(IReadOnlyList<Tensor> tensors, int root)
    {
        foreach (var group in tensors.Select((t, i) => (t, i)).GroupBy(x => x.t.dtype).OrderBy(g => (int)g.Key))
        {
            var items = group.ToList();
            long total = items.Sum(x => x.t.numel());
            var flat = _comm.Rank == root ? cat(items.Select(x => x.t.reshape(-1)).ToList()) : empty(total, group.Key);
            _comm.Broadcast(flat, root);
            if (_comm.Rank == root) continue;
            long offset = 0;
            foreach (var (t, _) in items)
            {
                t.copy_(flat.narrow(0, offset, t.numel()).view_as(t));
                offset += t.numel();
            }
        }
        return tensors;
    }

    /// <summary>Σ over ranks of each tensor (one allreduce per dtype, packed); returns new tensors.</summary>
    private List<Tensor> AllReduceSum(IReadOnlyList<Tensor> tensors)
    {
        var result = new Tensor[tensors.Count];
        foreach (var group in tensors.Select((t, i) => (t, i)).GroupBy(x => x.t.dtype).OrderBy(g => (int)g.Key))
        {
            var items = group.ToList();
            var flat = cat(items.Select(x => x.t.reshape(-1)).ToList());
            _comm.AllReduce(flat, ReduceOperation.Sum);
            long offset = 0;
            foreach (var (t, i) in items)
            {
                result[i] = flat.narrow(0, offset, t.numel()).view_as(t);
                offset += t.numel();
            }
        }
        return result.ToList();
    }

    public void Dispose()
    {
        foreach (var p in _pending.Values) p.Reset();
        _local.Dispose();
    }

    /// <summary>
    /// One layer's factor contributions since the last sync: D ← β D + (1 − β) c on each factor update, and the
    /// coefficient β^k (0 after a first update) by which the synced factors enter the next sync.
    /// </summary>
    private sealed class PendingFactors
    {
        public Tensor? A, G;
        public double Carry = 1;

        public bool HasContributions => A is not null;

        public void Add(Tensor a, Tensor g, double decay, bool first)
        {
            if (first)
            {
                Set(a.detach().clone(), g.detach().clone());
                Carry = 0;
                return;
            }
            Carry *= decay;
            if (A is null) Set(a.mul(1 - decay), g.mul(1 - decay));
            else
            {
                A.mul_(decay).add_(a, alpha: 1 - decay);
                G!.mul_(decay).add_(g, alpha: 1 - decay);
            }
        }

        private void Set(Tensor a, Tensor g)
        {
            A?.Dispose(); G?.Dispose();
            A = a.DetachFromDisposeScope();
            G = g.DetachFromDisposeScope();
        }

        public void Reset()
        {
            A?.Dispose(); G?.Dispose();
            A = G = null;
            Carry = 1;
        }
    }
}
