using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using static TorchSharp.torch;

namespace NaturalGradient.Preconditioning;

/// <summary>The preconditioner's refusals: what it checks of the model, its own state and each batch before any work.</summary>
public sealed partial class NaturalGradientPreconditioner
{
    /// <summary>
    /// The widest dense factor a Kronecker structure keeps for <paramref name="layer"/>: K-FAC and EKFAC keep an index
    /// layer's A as its diagonal (only G, out × out, is dense); K-BFGS keeps a dense A for every layer.
    /// </summary>
    private long DenseFactorSide(ILayerAdapter layer) => Options.Structure == CurvatureStructure.Kbfgs
        ? Math.Max(layer.InputDim, layer.OutputDim)
        : DiagonalActivation.DenseFactorSide(layer);

    private string DenseFactors(ILayerAdapter layer) =>
        Options.Structure == CurvatureStructure.Kbfgs || !DiagonalActivation.Applies(layer)
            ? $"{layer.InputDim} × {layer.InputDim} and {layer.OutputDim} × {layer.OutputDim} factors"
            : $"a {layer.OutputDim} × {layer.OutputDim} factor G (and a diagonal A of length {layer.InputDim})";

    /// <summary>A trainable tensor of the model (the first covered one): its dtype and device are the model's.</summary>
    internal Tensor ModelTensor => Capture.Layers[0].Adapter.Parameters[0];

    /// <summary>Refuses use after <see cref="Dispose"/> and after the model's parameters were replaced (before any work).</summary>
    internal void CheckUsable()
    {
        if (_disposed)
            throw new ObjectDisposedException(null, "this NaturalGradientPreconditioner (or its NaturalGradientDescent) was disposed; build a new one");
        Capture.ThrowIfParametersReplaced();
    }

    /// <summary>
    /// One example is one row of the output the likelihood sees, and the statistics read example i's gradient where each
    /// layer holds example i (its first dimension). Two mismatches make them wrong, silently, so they are refused before
    /// anything changes (shapes only):
    /// <list type="bullet">
    /// <item>a layer that saw more rows than the output has (positions folded into its batch, [m, T, d] → [m·T, d]):
    /// its rows are positions, not examples, so the per-example gradients of the exact, block, TENGraD and diagonal
    /// structures miss the cross-position terms (59 % off the brute-force empirical Fisher on a 5-example case); K-FAC,
    /// EKFAC and K-BFGS approximate across rows and positions anyway, and Hessian-free forms exact products;</item>
    /// <item>an output with more rows than the layers' batch (a per-token head flattened to [m·T, V]) with the exact
    /// Fisher, whose one backward per output-Fisher column adds cross terms J_rₜᵀ BₜBₛᵀ J_rₛ between an example's rows;
    /// the empirical and Monte-Carlo Fishers (per-example gradients summed over its rows) and Hessian-free are right.</item>
    /// </list>
    /// </summary>
    private void ThrowIfRowsAreNotExamples(IReadOnlyList<CapturedLayer> recorded, Tensor output)
    {
        if (Options.Structure == CurvatureStructure.HessianFree) return;
        long rows = output.size(0);
        bool perExample = Options.Structure is CurvatureStructure.Exact or CurvatureStructure.BlockDiagonal
            or CurvatureStructure.Tengrad or CurvatureStructure.Diagonal or CurvatureStructure.Auto;
        if (perExample) ThrowIfBatchesDiffer(recorded, rows, Options.Structure.ToString().ToLowerInvariant());
        foreach (var layer in recorded)
        {
            if (layer.Input is not { } input || input.Sizes() is not [var batch, ..] || batch == rows) continue;
            if (batch > rows && perExample)
                throw new ModelNotSupportedException(
                    $"layer '{layer.Name}' ({layer.Adapter.KindName}) saw a batch of {batch} rows, but the output has {rows} (one per example): " +
                    "its rows are not examples (positions folded into the batch, as in x.reshape(m·T, d)?), so per-example gradients are not defined " +
                    $"for {Options.Structure.ToString().ToLowerInvariant()}; keep the batch dimension through the layer (Linear and Conv2d take [m, T, …, d] " +
                    "inputs), or use kfac or ekfac (rows as positions) or HessianFree");
            if (batch < rows && Options.Fisher == FisherKind.Exact)
                throw new ModelNotSupportedException(
                    $"the exact Fisher needs one output row per example of the model's batch, but the output has {rows} rows and layer " +
                    $"'{layer.Name}' ({layer.Adapter.KindName}) saw a batch of {batch} (positions flattened into rows, as for per-token outputs?): " +
                    "use Fisher = FisherKind.MonteCarlo or Empirical (per-example gradients summed over an example's rows), " +
                    "or Structure = CurvatureStructure.HessianFree (exact Gauss-Newton products)");
        }
    }

    /// <summary>
    /// The per-example structures need every layer's gradients per example of the same batch (the exact structure stacks
    /// them into one Jacobian): a layer applied to an input that is not the batch (a constant or a parameter broadcast
    /// over it) has one row for all the examples, so its per-example gradients are not separated — its block would be
    /// that of the summed gradient, (Σᵢgᵢ)(Σᵢgᵢ)ᵀ instead of Σᵢ gᵢgᵢᵀ, and the exact structure's stacking fails.
    /// </summary>
    private static void ThrowIfBatchesDiffer(IReadOnlyList<CapturedLayer> recorded, long rows, string structure)
    {
        var batches = recorded.Where(l => l.Input is not null).Select(l => (Layer: l, Batch: l.Input!.size(0))).ToList();
        if (batches.Count < 2) return;
        var reference = batches.FirstOrDefault(b => b.Batch == rows);
        if (reference.Layer is null) reference = batches[0];
        if (batches.FirstOrDefault(b => b.Batch != reference.Batch) is not { Layer: not null } other) return;
        throw new ModelNotSupportedException(
            $"{structure} needs every layer's gradients per example of the batch, but layer '{other.Layer.Name}' ({other.Layer.Adapter.KindName}) " +
            $"saw a batch of {other.Batch} rows and layer '{reference.Layer.Name}' ({reference.Layer.Adapter.KindName}) a batch of {reference.Batch}: " +
            "a layer applied to an input that is not the batch's examples (a constant or a parameter broadcast over the batch?) has no per-example " +
            $"gradients for those examples; exclude layer '{other.Layer.Name}' with IncludeLayer (it then keeps its plain gradient), or use kfac or ekfac (rows as positions) or HessianFree");
    }

    private bool _usesChecked;

    /// <summary>On the first metric batch only: every covered tensor's gradient is explained by its recorded calls
    /// (<see cref="LayerCapture.ThrowIfUsedOutside"/>: two extra backward passes, once; again on the next batch
    /// when the gradients were not finite).</summary>
    private void CheckUsesOnce(Tensor scalar, IReadOnlyList<CapturedLayer> recorded)
    {
        if (!_usesChecked) _usesChecked = Capture.ThrowIfUsedOutside(scalar, recorded);
    }
}
