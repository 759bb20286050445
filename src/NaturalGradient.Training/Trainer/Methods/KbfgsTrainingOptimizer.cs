using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kbfgs;
using NaturalGradient.Fisher;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training;

/// <summary>
/// K-BFGS in the trainer (Goldfarb, Ren &amp; Bahamou 2020, algorithm 1): a natural-gradient step with
/// <see cref="KbfgsCurvature"/>; <see cref="NaturalGradient.Optim.NaturalGradientDescent.Step"/> then runs a second
/// forward-backward pass on the same batch with the new weights, whose pre-activations and pre-activation gradients give
/// each layer's secant pair for the BFGS update of G⁻¹. This class adds the trainer's option checks.
/// </summary>
/// <remarks>Needs the empirical Fisher on the same batch: the secant pair must be a change of the loss gradient.</remarks>
public sealed class KbfgsTrainingOptimizer : ITrainingOptimizer
{
    private readonly NaturalGradientTrainingOptimizer _inner;

    public KbfgsTrainingOptimizer(OptimizerContext context)
    {
        var s = context.Settings;
        if (s.Fisher != FisherKind.Empirical)
            throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.Fisher), s.Fisher,
                "kbfgs builds its secant pairs from loss gradients: it needs the empirical Fisher (--fisher empirical)");
        if (s.MetricSource != MetricSource.SameBatch)
            throw new ArgumentOutOfRangeException(nameof(OptimizerSettings.MetricSource), s.MetricSource,
                "kbfgs takes its secant pairs on the step's own batch: use --metric same");
        _inner = new NaturalGradientTrainingOptimizer("kbfgs", CurvatureStructure.Kbfgs, context);
    }

    public string Name => "kbfgs";
    public double LearningRate => _inner.LearningRate;
    public void SetLearningRate(double learningRate) => _inner.SetLearningRate(learningRate);

    /// <summary>The underlying natural-gradient optimiser (its preconditioner holds the capture and the curvature).</summary>
    public NaturalGradient.Optim.NaturalGradientDescent Optimizer => _inner.Optimizer;

    /// <summary>The curvature (blocks with their BFGS inverses).</summary>
    public KbfgsCurvature Curvature => (KbfgsCurvature)_inner.Optimizer.Preconditioner.Curvature;

    /// <summary>One step; <see cref="NaturalGradient.Optim.NaturalGradientDescent.Step"/> takes the secant pass itself.</summary>
    public StepResult Step(Tensor x, Tensor y) => _inner.Step(x, y);

    /// <inheritdoc/>
    /// <remarks>The natural-gradient state, with each layer's A and BFGS (or L-BFGS) inverse of G
    /// (<see cref="KbfgsBlock.ExportState"/>): a resumed run takes the same steps as one that never stopped.</remarks>
    public void ExportState(string prefix, NaturalGradient.Optim.NaturalGradientStateDict state) => _inner.ExportState(prefix, state);

    /// <inheritdoc/>
    public void ImportState(string prefix, NaturalGradient.Optim.NaturalGradientStateDict state) => _inner.ImportState(prefix, state);

    public void Dispose() => _inner.Dispose();
}
