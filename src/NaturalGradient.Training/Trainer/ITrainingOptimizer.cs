using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training;

/// <summary>
/// One training method as the <see cref="Trainer"/> drives it: a full optimisation step on a batch (forward,
/// backward, update). Created by <see cref="OptimizerCatalog"/> from an <see cref="OptimizerContext"/>.
/// </summary>
/// <remarks>
/// <see cref="Step"/> runs inside the trainer's per-step <c>torch.NewDisposeScope()</c>: temporaries need no
/// disposal, but state kept across steps must be detached from the scope (<c>DetachFromDisposeScope()</c>) and
/// disposed by <see cref="IDisposable.Dispose"/>. Invoke the model with <c>model.call(x)</c> so hooks fire.
/// </remarks>
public interface ITrainingOptimizer : IDisposable
{
    /// <summary>The catalog name (e.g. "sgd", "kfac").</summary>
    string Name { get; }

    /// <summary>The learning rate currently in use.</summary>
    double LearningRate { get; }

    /// <summary>Sets the learning rate for the following steps (the trainer applies its schedule once per epoch).</summary>
    /// <param name="learningRate">New learning rate, &gt; 0.</param>
    void SetLearningRate(double learningRate);

    /// <summary>One optimisation step on the batch <paramref name="x"/>, <paramref name="y"/>.</summary>
    /// <param name="x">Inputs, batch first, in the model's dtype.</param>
    /// <param name="y">Targets: float m × o (regression) or int64 class indices m (classification).</param>
    /// <returns>The batch loss before the update and optional diagnostics.</returns>
    StepResult Step(Tensor x, Tensor y);

    /// <summary>Writes the method's state (momentum, Adam moments, curvature state, damping, step counters) under <paramref name="prefix"/>.</summary>
    void ExportState(string prefix, NaturalGradient.Optim.NaturalGradientStateDict state);

    /// <summary>Restores a state from <see cref="ExportState"/>; the following steps are those the saved method would have taken.</summary>
    /// <exception cref="InvalidDataException">The state belongs to another method or model, or is incomplete.</exception>
    void ImportState(string prefix, NaturalGradient.Optim.NaturalGradientStateDict state);
}
