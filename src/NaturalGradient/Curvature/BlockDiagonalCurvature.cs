using NaturalGradient.Numerics;
using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature;

/// <summary>A block-diagonal metric: one <see cref="ICurvatureBlock"/> per layer, created on first sight of the layer.</summary>
public sealed partial class BlockDiagonalCurvature : ICurvature
{
    private readonly Func<ILayerAdapter, ICurvatureBlock> _createBlock;
    private readonly Dictionary<string, ICurvatureBlock> _blocks = new();
    private readonly Dictionary<string, double> _lastDamping = new();

    /// <param name="createBlock">Makes the block of a layer on first sight.</param>
    /// <param name="layerDamping">One λ for every block, or λ_l = λ · tr(M_l)/p_l (<see cref="Damping.LayerDamping"/>).</param>
    public BlockDiagonalCurvature(Func<ILayerAdapter, ICurvatureBlock> createBlock, Damping.LayerDamping layerDamping = Damping.LayerDamping.Global)
    {
        _createBlock = createBlock;
        LayerDamping = layerDamping;
    }

    public Damping.LayerDamping LayerDamping { get; }

    /// <summary>The λ_l each layer's block was solved with in the last <see cref="Precondition"/>, by layer name.</summary>
    public IReadOnlyDictionary<string, double> LastDamping => _lastDamping;

    /// <summary>The block of a layer (after its first update).</summary>
    public ICurvatureBlock Block(string layerName) =>
        _blocks.TryGetValue(layerName, out var b) ? b : throw new KeyNotFoundException($"no curvature block for layer '{layerName}' yet");

    /// <summary>The block of <paramref name="layer"/>, created on first sight (for callers that feed blocks themselves).</summary>
    public ICurvatureBlock GetOrCreate(ILayerAdapter layer)
    {
        if (!_blocks.TryGetValue(layer.Name, out var block))
            _blocks[layer.Name] = block = _createBlock(layer);
        return block;
    }

    /// <summary>
    /// Updates every layer's block. The dense factorisations the blocks need (K-FAC's and EKFAC's eigendecompositions)
    /// are gathered and run side by side once every block has absorbed its statistics (<see cref="FactorizationQueue"/>);
    /// TENGraD's Grams are formed once all layers' rows are in, those of layers of one shape together
    /// (<see cref="Blocks.TengradBlock.UpdateAll"/>). When a block throws, the blocks before it still complete their updates.
    /// </summary>
    public void Update(CurvatureBatch batch) => FactorizationQueue.Run(queue =>
    {
        var tengrad = new List<(Blocks.TengradBlock, Fisher.LayerStatistics)>();
        try
        {
            foreach (var stats in batch.Layers)
            {
                var block = GetOrCreate(stats.Adapter);
                if (block is Blocks.TengradBlock gram) tengrad.Add((gram, stats));
                else if (block is IFactorizingBlock factorizing) factorizing.Update(stats, batch.Step, queue);
                else block.Update(stats, batch.Step);
            }
        }
        finally
        {
            // TENGraD's Grams after all rows are in: the layers of one shape form theirs together.
            Blocks.TengradBlock.UpdateAll(tengrad);
        }
    });

    /// <summary>
    /// Runs, before the solves with λ_l = <paramref name="lambdas"/>[l], the factorisations they need (K-FAC's Cholesky
    /// inverses when due or when λ changed), side by side.
    /// </summary>
    private void PrepareSolves(IReadOnlyList<ILayerAdapter> layers, double[] lambdas) => FactorizationQueue.Run(queue =>
    {
        for (int i = 0; i < layers.Count; i++)
            if (_blocks.TryGetValue(layers[i].Name, out var block) && block is IFactorizingBlock factorizing)
                factorizing.QueueSolve(lambdas[i], queue);
    });

    public IReadOnlyList<Tensor> Precondition(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients, double damping)
    {
        var lambdas = LayerDampings(layers, damping);
        _lastDamping.Clear();
        for (int i = 0; i < layers.Count; i++) _lastDamping[layers[i].Name] = lambdas[i];
        PrepareSolves(layers, lambdas);
        return layers.Select((l, i) => Block(l.Name).Precondition(gradients[i], lambdas[i])).ToList();
    }

    /// <summary>As <see cref="Precondition"/>, each block taking its mean-gradient route when it has one (<see cref="ICurvatureBlock.PreconditionMeanGradient(Fisher.LayerStatistics, double)"/>).</summary>
    public IReadOnlyList<Tensor> PreconditionMeanGradient(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients,
        IReadOnlyList<Fisher.LayerStatistics> statistics, double damping) =>
        PreconditionMeanGradient(layers, gradients, statistics, damping, innerProducts: null);

    /// <inheritdoc/>
    public IReadOnlyList<Tensor> PreconditionMeanGradient(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> gradients,
        IReadOnlyList<Fisher.LayerStatistics> statistics, double damping, Tensor?[]? innerProducts)
    {
        if (statistics.Count != layers.Count) return Precondition(layers, gradients, damping);
        var lambdas = LayerDampings(layers, damping);
        _lastDamping.Clear();
        for (int i = 0; i < layers.Count; i++) _lastDamping[layers[i].Name] = lambdas[i];
        PrepareSolves(layers, lambdas);
        // TENGraD's mean-gradient solves, the layers sharing n together (one batched factorisation and one host read); the
        // other blocks, and any layer the batch declined, one by one.
        var batched = Blocks.TengradBlock.PreconditionMeanGradients(
            layers.Select((l, i) => ReferenceEquals(statistics[i].Adapter, l) ? Block(l.Name) as Blocks.TengradBlock : null).ToList(),
            statistics, lambdas, innerProducts is not null);
        return layers.Select((l, i) =>
        {
            var block = Block(l.Name);
            if (!ReferenceEquals(statistics[i].Adapter, l)) return block.Precondition(gradients[i], lambdas[i]);
            if ((batched[i] ?? block.PreconditionMeanGradient(statistics[i], lambdas[i], innerProducts is not null)) is not { } routed)
                return block.Precondition(gradients[i], lambdas[i]);
            if (innerProducts is not null) innerProducts[i] = routed.GradientInnerProduct;
            // The gradient's dtype is its parameters': read from them, so a route that needs no gradient forms none.
            return routed.Direction.InDtype(l.Parameters[0].dtype);
        }).ToList();
    }

    /// <summary>λ_l per layer: λ for <see cref="Damping.LayerDamping.Global"/>; λ · max(c_l, 10⁻⁸ max c) with c_l = tr(M_l)/p_l otherwise.</summary>
    public double[] LayerDampings(IReadOnlyList<ILayerAdapter> layers, double damping)
    {
        if (LayerDamping == Damping.LayerDamping.Global) return layers.Select(_ => damping).ToArray();
        var scale = layers.Select(l => Block(l.Name).MeanCurvature()).ToArray();
        double max = scale.Where(double.IsFinite).DefaultIfEmpty(0).Max();
        double floor = max > 0 ? 1e-8 * max : 1.0;
        return scale.Select(c => damping * (double.IsFinite(c) ? Math.Max(c, floor) : floor)).ToArray();
    }

    public IReadOnlyList<Tensor> Multiply(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors) =>
        layers.Select((l, i) => Block(l.Name).Multiply(vectors[i])).ToList();

    public Tensor QuadraticForm(IReadOnlyList<ILayerAdapter> layers, IReadOnlyList<Tensor> vectors)
    {
        Tensor total = zeros(1, dtype: ScalarType.Float64).squeeze();
        for (int i = 0; i < layers.Count; i++) total = total.add_(Block(layers[i].Name).QuadraticForm(vectors[i]));
        return total;
    }

    public void Dispose()
    {
        foreach (var b in _blocks.Values) b.Dispose();
        _blocks.Clear();
    }
}
