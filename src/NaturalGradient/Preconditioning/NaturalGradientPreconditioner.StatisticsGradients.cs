using NaturalGradient.Capture;
using NaturalGradient.Fisher;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Preconditioning;

/// <summary>
/// Layer gradients formed from the statistics instead of by the backward pass. With the empirical Fisher of the
/// step's own batch, a layer called once with one position per example (a Linear layer on m × in inputs) has the
/// gradient ḡ = w Σᵢ δᵢāᵢᵀ = w DᵀĀ of its statistics, whose D the backward pass must reach anyway. The backward of
/// <see cref="Optim.NaturalGradientDescent.Step"/> therefore stops at those layers' outputs: their weight-gradient
/// products (one m-inner GEMM per layer: 0.44–0.48 of forward + backward on MLP 784-512-512-10 at batch 256) are made only
/// when something reads ḡ — a block without a mean-gradient route, the KL clip on η²Δᵀg where the route gives no Δᵀg,
/// the quadratic model, detailed diagnostics — and then from D and Ā, by the same product. Beside a Monte-Carlo or
/// exact metric of the same batch the loss's own output gradients give the rows (<see cref="LossGradientRows"/>).
/// </summary>
public sealed partial class NaturalGradientPreconditioner
{
    // Per layer of _layers: the statistics whose mean gradient is the layer's gradient (its .grad was not filled), or null.
    private LayerStatistics?[]? _gradientSources;

    /// <summary>
    /// True for a layer whose loss gradient its empirical statistics give exactly as w DᵀĀ: one call, a Kronecker
    /// layer with one position per example (a 2-D output), not an index or tied layer. Parameters used outside their
    /// layer are refused before the first step (<see cref="LayerCapture.ThrowIfUsedOutside"/>), so nothing else adds to ḡ.
    /// </summary>
    private static bool GradientFromStatistics(CapturedLayer layer) =>
        layer.CallCount == 1 && layer.Adapter.IsKronecker && layer.Adapter is not ITokenLayerAdapter && layer.Adapter is not TiedLayerAdapter
        && layer.Calls[0].Output.dim() == 2;

    // Storage addresses of the model's parameters (built on first use; parameters replaced later are refused by CheckUsable).
    private HashSet<IntPtr>? _parameterStorages;

    /// <summary>
    /// <paramref name="statistics"/> as the source of a gradient read later in the step, or after it: the step changes the
    /// parameters in place, so activations that are a parameter's own storage (a bias-free Linear applied to learned
    /// queries: Ā is then a view of its input) are copied, or ḡ read after the update would use the new values. Other
    /// activations are fresh tensors of the forward pass and are kept as they are: a layer with a bias column has Ā = [a 1],
    /// a new tensor, so only a bias-free layer's Ā is looked up (one storage lookup).
    /// </summary>
    private LayerStatistics GradientSource(LayerStatistics statistics)
    {
        if (statistics.Adapter.HasBias) return statistics;
        _parameterStorages ??= _model.parameters().Select(TensorIdentity.StorageAddress).ToHashSet();
        var a = statistics.Activations;
        if (!_parameterStorages.Contains(TensorIdentity.StorageAddress(a))) return statistics;
        return new LayerStatistics(statistics.Adapter, a.detach().clone(), statistics.OutputGradients, statistics.Weight)
            { GradientWeight = statistics.GradientWeight };
    }

    /// <summary>The parameters whose .grad the backward must fill: those of layers not formed from statistics, and the plain ones.</summary>
    private static List<Parameter> ParametersToDifferentiate(IReadOnlyList<CapturedLayer> recorded, bool[] fromStatistics, IReadOnlyList<Parameter> plain) =>
        Trainable(recorded.Where((_, i) => !fromStatistics[i]).SelectMany(l => l.Adapter.Parameters).Concat(plain));

    /// <summary>
    /// The parameters that require grad. No tensor appears twice: coverage is per tensor (a tied tensor is one layer),
    /// and the plain parameters are those outside every layer; the wrappers are the ones the adapters and the optimiser
    /// hold, so a reference check guards the list without a storage lookup per parameter and step.
    /// </summary>
    private static List<Parameter> Trainable(IEnumerable<Parameter> parameters) =>
        parameters.Where(p => p.requires_grad).Distinct(ReferenceEqualityComparer.Instance).Cast<Parameter>().ToList();

    // The statistics of the last metric collection (taken by the curvature or rejected by the guard), in layer order.
    private IReadOnlyList<LayerStatistics>? _collected;

    /// <summary>
    /// The loss's backward for a Monte-Carlo or exact metric of the same batch whose layers all have their gradient as
    /// w DᵀĀ (<see cref="GradientFromStatistics"/>): the pass stops at the layer outputs (<paramref name="outputs"/>, in
    /// layer order) and fills .grad of <paramref name="plain"/> only; each layer's gradient is then the mean gradient of
    /// statistics with the metric's Ā and the loss's D = m ∂L/∂out, which both form it when read and let the blocks form
    /// Δ from the rows (<see cref="SolveMeanGradient"/>).
    /// </summary>
    private void LossGradientRows(Tensor loss, IReadOnlyList<Tensor> outputs, IReadOnlyList<Parameter> plain, long batchSize)
    {
        var grads = LayerCapture.BackwardTo(loss, outputs, Trainable(plain));
        // The rows are formed whether or not the curvature took the batch: nothing filled these layers' .grad.
        var metric = _collected ?? throw new InvalidOperationException("no statistics were collected for the loss's rows");
        var rows = new LayerStatistics[outputs.Count];
        for (int i = 0; i < rows.Length; i++)
        {
            var d = grads[i] is { } g ? g.mul(batchSize) : zeros_like(outputs[i]).detach();
            rows[i] = new LayerStatistics(metric[i].Adapter, metric[i].Activations, metric[i].Adapter.OutputGradients(d).unsqueeze(0), 1.0 / batchSize)
                { GradientWeight = 1.0 / batchSize };
        }
        _gradientSources = rows.Select(GradientSource).ToArray();
        if (!MetricRejected) _meanGradientStatistics = rows;
    }

    /// <summary>Layer <paramref name="index"/>'s gradient as W̄: from its statistics (w DᵀĀ) when the backward left it to them, else from .grad.</summary>
    private Tensor GradientMatrix(int index)
    {
        if (_gradientSources?[index] is not { } statistics) return _layers[index].GradientMatrix();
        if (statistics.IsDisposed)
            throw new InvalidOperationException(
                $"the gradient of layer '{_layers[index].Name}' was formed from the statistics of NaturalGradientDescent.Step, whose dispose scope has ended " +
                "(the step's backward pass does not fill .grad of such layers): read it inside the step's scope, or use Backward for .grad");
        return statistics.GradientSum().mul_(statistics.GradientWeight!.Value);
    }
}
