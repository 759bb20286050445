using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Diagnostics;

/// <summary>
/// Runs <see cref="ApproximationDiagnostics"/> for a <see cref="NaturalGradientPreconditioner"/> on a probe batch: one
/// forward pass, the metric statistics of the preconditioner's Fisher kind (plus the empirical ones for the gradient when
/// the kind differs), and either the live curvature's blocks (what training uses now: running averages, quasi-Newton
/// history) or fresh blocks of the same structure built from the probe alone (the structural error on identical data).
/// Neither the weights, their .grad, nor the live curvature are changed.
/// </summary>
public static class ApproximationProbe
{
    /// <summary>Per-layer diagnostics on (x, y).</summary>
    /// <param name="preconditioner">The method (its capture, likelihood, options and curvature are used).</param>
    /// <param name="model">The model the preconditioner is bound to.</param>
    /// <param name="x">Probe inputs.</param>
    /// <param name="y">Probe targets.</param>
    /// <param name="damping">λ &gt; 0 for both damped solves.</param>
    /// <param name="fresh">True: blocks built from the probe only; false: the live curvature's blocks.</param>
    /// <param name="seed">Seed of the Monte-Carlo targets (Monte-Carlo Fisher only).</param>
    /// <param name="maxBlockParameters">Layers above this size are not measured.</param>
    public static IReadOnlyList<LayerApproximation> Run(NaturalGradientPreconditioner preconditioner, nn.Module<Tensor, Tensor> model,
        Tensor x, Tensor y, double damping, bool fresh, long seed = 0, long maxBlockParameters = ApproximationDiagnostics.DefaultMaxBlockParameters)
    {
        ArgumentNullException.ThrowIfNull(preconditioner);
        ArgumentNullException.ThrowIfNull(model);
        var options = preconditioner.Options;
        var capture = preconditioner.Capture;
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)seed);
        capture.Clear();
        try
        {
            using var grad = enable_grad();
            var output = model.call(x);
            var recorded = capture.Recorded();
            var likelihood = preconditioner.Likelihood;
            var metric = new FisherEstimator(likelihood, options.Fisher, options.MonteCarloSamples).Collect(capture, recorded, output, y, generator);
            var empirical = options.Fisher == FisherKind.Empirical ? metric : new FisherEstimator(likelihood).Collect(capture, recorded, output, y);
            var gradients = empirical.Select(ApproximationDiagnostics.MeanGradient).ToList();
            if (!fresh)
                return ApproximationDiagnostics.Measure(ApproximationDiagnostics.Blocks(preconditioner.Curvature), metric, gradients, damping, options.Form, maxBlockParameters);
            using var curvature = CurvatureFactory.Create(options);
            var blocks = ApproximationDiagnostics.Blocks(curvature);
            if (blocks is not null) curvature.Update(new CurvatureBatch(metric, likelihood, output, 0));
            return ApproximationDiagnostics.Measure(blocks, metric, gradients, damping, options.Form, maxBlockParameters);
        }
        finally
        {
            capture.Clear();
        }
    }
}
