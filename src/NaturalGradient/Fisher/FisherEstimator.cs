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
        long m = output.shape[0];
        var passes = new List<IReadOnlyList<Tensor>>();
        double weight;
        switch (Kind)
        {
            case FisherKind.Empirical:
                if (targets is null)
                    throw new InvalidOperationException("the empirical Fisher needs the batch's labels; use the Monte-Carlo or exact Fisher for unlabeled metric inputs");
                passes.Add(capture.OutputGradients(Likelihood.PerExampleLoss(output, targets).sum(), layers));
                weight = 1.0 / m;
                break;
            case FisherKind.MonteCarlo:
                for (int s = 0; s < MonteCarloSamples; s++)
                {
                    var sampled = Likelihood.SampleTargets(output, generator);
                    passes.Add(capture.OutputGradients(Likelihood.PerExampleLoss(output, sampled).sum(), layers));
                }
                weight = 1.0 / (m * (double)MonteCarloSamples);
                break;
            case FisherKind.Exact:
                // F = (1/m) Σᵢ J_rᵢᵀ Bᵢ Bᵢᵀ J_rᵢ: backpropagating Σᵢ rᵢ·Bᵢ[:, c] gives J_rᵢᵀ Bᵢ[:, c] at once for all i.
                var factor = Likelihood.OutputFisherFactor(output).detach();
                for (long c = 0; c < factor.shape[2]; c++)
                    passes.Add(capture.OutputGradients((output * factor.select(2, c)).sum(), layers));
                weight = 1.0 / m;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "unknown Fisher kind");
        }
        // Activations after the passes: they mark the calls outside the metric's graph (a validation forward), which are left out.
        var result = new List<LayerStatistics>(layers.Count);
        for (int l = 0; l < layers.Count; l++)
            result.Add(new LayerStatistics(layers[l].Adapter, layers[l].Activations(), stack(passes.Select(p => p[l]).ToArray()), weight)
            {
                Tokens = layers[l].Tokens(),
            });
        return result;
    }

    /// <summary>
    /// Prepares the empirical Fisher from the training loss's own backward pass: asks autograd to keep the gradient of
    /// every recorded call's layer output. Call before <c>loss.backward()</c>, then <see cref="CollectFromLossGradients"/>.
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
    /// <see cref="FisherKind.Empirical"/>). A layer called several times contributes every call that reached the loss,
    /// concatenated along the positions (as in <see cref="LayerCapture.OutputGradients"/>); a call the loss did not
    /// reach (a validation forward with gradients on) is marked not connected and left out.
    /// </summary>
    /// <param name="layers">The recorded layers, in model order.</param>
    /// <param name="batchSize">m, the number of examples the loss averages over.</param>
    public static IReadOnlyList<LayerStatistics> CollectFromLossGradients(IReadOnlyList<CapturedLayer> layers, long batchSize)
    {
        var result = new List<LayerStatistics>(layers.Count);
        foreach (var l in layers)
        {
            var parts = new List<Tensor>(l.CallCount);
            Tensor? first = null;
            foreach (var call in l.Calls)
            {
                var grad = call.Output.grad;
                bool defined = grad is not null && !grad.IsInvalid;
                call.Connected = defined;
                var arranged = l.Adapter.OutputGradients(defined ? grad!.detach().mul(batchSize) : zeros_like(call.Output).detach());
                first ??= arranged;
                if (defined) parts.Add(arranged);
            }
            if (parts.Count == 0) parts.Add(first!);
            l.CheckBatch(parts.ToArray());
            var delta = parts.Count == 1 ? parts[0] : cat(parts.ToArray(), 1);
            result.Add(new LayerStatistics(l.Adapter, l.Activations(), delta.unsqueeze(0), 1.0 / batchSize)
            {
                Tokens = l.Tokens(),
                GradientWeight = 1.0 / batchSize,
            });
        }
        return result;
    }
}
