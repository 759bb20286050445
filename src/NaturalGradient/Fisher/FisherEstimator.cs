using NaturalGradient.Capture;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Fisher;

/// <summary>
/// Turns one recorded forward pass into <see cref="LayerStatistics"/> for the chosen Fisher: it backpropagates
/// per-example losses on data labels (empirical), on sampled labels (Monte Carlo) or the output-Fisher factor's
/// columns (exact) to the layer outputs. The graph is kept, so the caller's own backward still works.
/// </summary>
public sealed class FisherEstimator
{
    /// <param name="likelihood">The model's predictive distribution.</param>
    /// <param name="kind">Which Fisher; default empirical.</param>
    /// <param name="monteCarloSamples">k for <see cref="FisherKind.MonteCarlo"/>; default 1.</param>
    public FisherEstimator(ILikelihood likelihood, FisherKind kind = FisherKind.Empirical, int monteCarloSamples = 1)
    {
        if (monteCarloSamples < 1)
            throw new ArgumentOutOfRangeException(nameof(monteCarloSamples), monteCarloSamples, "monteCarloSamples must be ≥ 1");
        Likelihood = likelihood;
        Kind = kind;
        MonteCarloSamples = monteCarloSamples;
    }

    public ILikelihood Likelihood { get; }
    public FisherKind Kind { get; }
    public int MonteCarloSamples { get; }

    /// <summary>
    /// Statistics of the recorded <paramref name="layers"/> for the network <paramref name="output"/> (m × o).
    /// <paramref name="targets"/> are needed for the empirical Fisher only.
    /// </summary>
    public IReadOnlyList<LayerStatistics> Collect(
        LayerCapture capture, IReadOnlyList<CapturedLayer> layers, Tensor output, Tensor? targets, Generator? generator = null)
    {
        long m = output.size(0);
        var passes = new List<IReadOnlyList<Tensor?[]>>();
        double weight;
        switch (Kind)
        {
            case FisherKind.Empirical:
                if (targets is null)
                    throw new InvalidOperationException("the empirical Fisher needs the batch's labels; use the Monte-Carlo or exact Fisher for unlabeled metric inputs");
                passes.Add(capture.CallGradients(Likelihood.PerExampleLoss(output, targets).sum(), layers));
                weight = 1.0 / m;
                break;
            case FisherKind.MonteCarlo:
                for (int s = 0; s < MonteCarloSamples; s++)
                {
                    var sampled = Likelihood.SampleTargets(output, generator);
                    passes.Add(capture.CallGradients(Likelihood.PerExampleLoss(output, sampled).sum(), layers));
                }
                weight = 1.0 / (m * (double)MonteCarloSamples);
                break;
            case FisherKind.Exact:
                // F = (1/m) Σᵢ J_rᵢᵀ Bᵢ Bᵢᵀ J_rᵢ: backpropagating Σᵢ rᵢ·Bᵢ[:, c] gives J_rᵢᵀ Bᵢ[:, c] at once for all i.
                var factor = Likelihood.OutputFisherFactor(output).detach();
                for (long c = 0; c < factor.size(2); c++)
                    passes.Add(capture.CallGradients((output * factor.select(2, c)).sum(), layers));
                weight = 1.0 / m;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "unknown Fisher kind");
        }
        // Calls outside every pass's graph (a validation forward) are left out.
        var result = new List<LayerStatistics>(layers.Count);
        for (int l = 0; l < layers.Count; l++)
            result.Add(layers[l].Statistics(passes.Select(p => p[l]).ToList(), weight));
        return result;
    }

    /// <summary>
    /// Prepares the empirical Fisher from the training loss's own backward pass: asks autograd to keep the gradient of
    /// every recorded layer output. Call before <c>loss.backward()</c>, then <see cref="CollectFromLossGradients(IReadOnlyList{CapturedLayer}, long)"/>.
    /// </summary>
    public static void RetainOutputGradients(IReadOnlyList<CapturedLayer> layers)
    {
        foreach (var l in layers)
            foreach (var call in l.Calls) call.Output.retain_grad();
    }

    /// <summary>
    /// Empirical-Fisher statistics from the gradients that <c>loss.backward()</c> left on the recorded layer outputs
    /// (kept by <see cref="RetainOutputGradients"/>), with no second backward pass. The loss is the batch mean of the
    /// per-example losses (the <see cref="ILikelihood.Loss"/> convention), so its gradient with respect to example i's
    /// layer output is δᵢ / m, and δ = m · ∂L/∂out (s = 1, w = 1/m: the same statistics as <see cref="Collect"/> with
    /// <see cref="FisherKind.Empirical"/>). Every call of a shared or tied layer is used; calls whose output received no
    /// gradient (a validation forward) are left out.
    /// </summary>
    /// <param name="layers">The recorded layers, in model order.</param>
    /// <param name="batchSize">m, the number of examples the loss averages over.</param>
    public static IReadOnlyList<LayerStatistics> CollectFromLossGradients(IReadOnlyList<CapturedLayer> layers, long batchSize) =>
        // .grad of an output from a backward without create_graph has no graph: no detach needed.
        CollectFromLossGradients(layers, batchSize, layers.Select(l => l.Calls.Select(c => c.Output.grad is { IsInvalid: false } g ? g : null).ToArray()).ToList());

    /// <summary>
    /// As <see cref="CollectFromLossGradients(IReadOnlyList{CapturedLayer}, long)"/>, from the mean loss's gradients at
    /// the recorded outputs given explicitly (<paramref name="outputGradients"/>[l][c]: layer l's call c, null for a call
    /// outside the loss's graph; as <see cref="LayerCapture.CallGradients"/> returns them, without a graph).
    /// </summary>
    public static IReadOnlyList<LayerStatistics> CollectFromLossGradients(IReadOnlyList<CapturedLayer> layers, long batchSize,
        IReadOnlyList<Tensor?[]> outputGradients)
    {
        var result = new List<LayerStatistics>(layers.Count);
        for (int l = 0; l < layers.Count; l++)
        {
            var grads = outputGradients[l].Select(g => g?.mul(batchSize)).ToArray();
            result.Add(layers[l].Statistics(new[] { grads }, 1.0 / batchSize).WithGradientWeight(1.0 / batchSize));
        }
        return result;
    }
}
