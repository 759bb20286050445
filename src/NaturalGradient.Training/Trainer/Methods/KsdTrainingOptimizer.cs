using NaturalGradient.Curvature.Ksd;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training;

/// <summary>
/// Krylov subspace descent in the trainer (<see cref="KrylovSubspaceDescent"/>): the basis comes from the step's batch,
/// the subspace minimisation runs on the step's batch together with an independent batch of the same size drawn from
/// the training set (Vinyals &amp; Povey 2012 use a separate, larger subset), or on the step's batch alone when the run
/// offers none. <see cref="OptimizerSettings.Damping"/> is both λ of the Krylov operator and the step penalty ρ. The subspace search sets the step length itself: the learning rate, momentum
/// and weight decay are not used.
/// </summary>
public sealed class KsdTrainingOptimizer : ITrainingOptimizer
{
    private readonly KrylovSubspaceDescent _ksd;
    private readonly OptimizerContext _context;

    public KsdTrainingOptimizer(OptimizerContext context)
    {
        _context = context;
        _ksd = new KrylovSubspaceDescent(context.Model, context.Likelihood, new KsdOptions
        {
            Dimension = context.Settings.KsdDimension, Damping = context.Settings.Damping, StepPenalty = context.Settings.Damping,
        });
        LearningRate = context.Settings.LearningRate;
    }

    public string Name => "ksd";

    /// <summary>The subspace method's settings (k = <see cref="KsdOptions.Dimension"/>, λ, ρ).</summary>
    public KsdOptions Options => _ksd.Options;
    public double LearningRate { get; private set; }

    public void SetLearningRate(double learningRate)
    {
        if (!(learningRate > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "learning rate must be > 0");
        LearningRate = learningRate;
    }

    public StepResult Step(Tensor x, Tensor y)
    {
        Tensor? sx = null, sy = null;
        if (_context.MetricBatches is { } batches)
        {
            var (ox, oy) = batches.Next(checked((int)x.shape[0]));
            (sx, sy) = (cat(new[] { x, ox }), cat(new[] { y, oy }));
        }
        var r = _ksd.Step(x, y, sx, sy);
        return new StepResult(r.Loss, _context.Settings.Damping, SolverIterations: r.Iterations, Skipped: !r.Applied);
    }

    /// <inheritdoc/>
    /// <remarks>KSD's state is its previous step, the extra basis vector of the next subspace (the metric batches'
    /// sampler is the trainer's and is saved with the run).</remarks>
    public void ExportState(string prefix, NaturalGradient.Optim.NaturalGradientStateDict state)
    {
        state.Texts[prefix + "method"] = Name;
        using var previous = _ksd.PreviousStep;
        state.Numbers[prefix + "has_previous_step"] = previous is null ? 0 : 1;
        if (previous is not null) state.SetTensor(prefix + "previous_step", previous);
    }

    /// <inheritdoc/>
    /// <exception cref="InvalidDataException">The state is not a ksd state, or its previous step does not fit the model.</exception>
    public void ImportState(string prefix, NaturalGradient.Optim.NaturalGradientStateDict state)
    {
        if (state.GetText(prefix + "method") != Name)
            throw new InvalidDataException($"the state is for the method {state.GetText(prefix + "method")}, not {Name}");
        if (state.GetNumber(prefix + "has_previous_step") == 0) { _ksd.RestorePreviousStep(null); return; }
        using var previous = state.GetTensor(prefix + "previous_step", new[] { _ksd.ParameterCount });
        _ksd.RestorePreviousStep(previous);
    }

    public void Dispose() => _ksd.Dispose();
}
