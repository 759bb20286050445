using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Training;

/// <summary>
/// Adapts a <c>torch.optim</c> optimizer to <see cref="ITrainingOptimizer"/>: zero_grad, forward through
/// <c>model.call</c>, mean-NLL loss, backward, <c>optimizer.step()</c>.
/// </summary>
public sealed class TorchTrainingOptimizer : ITrainingOptimizer
{
    private readonly Module<Tensor, Tensor> _model;
    private readonly ILikelihood _likelihood;
    private readonly optim.Optimizer _optimizer;

    /// <param name="name">Catalog name.</param>
    /// <param name="model">The model whose parameters <paramref name="optimizer"/> updates.</param>
    /// <param name="likelihood">Loss = <see cref="ILikelihood.Loss"/>.</param>
    /// <param name="optimizer">The torch optimizer; owned (disposed with this object).</param>
    public TorchTrainingOptimizer(string name, Module<Tensor, Tensor> model, ILikelihood likelihood, optim.Optimizer optimizer)
    {
        Name = name;
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _likelihood = likelihood ?? throw new ArgumentNullException(nameof(likelihood));
        _optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
    }

    /// <summary>torch.optim.SGD with <see cref="OptimizerSettings.Momentum"/> and <see cref="OptimizerSettings.WeightDecay"/>.</summary>
    public static ITrainingOptimizer Sgd(OptimizerContext c) => new TorchTrainingOptimizer("sgd", c.Model, c.Likelihood,
        optim.SGD(c.Model.parameters(), c.Settings.LearningRate, momentum: c.Settings.Momentum, weight_decay: c.Settings.WeightDecay));

    /// <summary>torch.optim.Adam with <see cref="OptimizerSettings.Beta1"/>, <see cref="OptimizerSettings.Beta2"/>,
    /// <see cref="OptimizerSettings.Eps"/> and <see cref="OptimizerSettings.WeightDecay"/>.</summary>
    public static ITrainingOptimizer Adam(OptimizerContext c) => new TorchTrainingOptimizer("adam", c.Model, c.Likelihood,
        optim.Adam(c.Model.parameters(), c.Settings.LearningRate, c.Settings.Beta1, c.Settings.Beta2, c.Settings.Eps, c.Settings.WeightDecay));

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public double LearningRate => _optimizer.ParamGroups.First().LearningRate;

    /// <inheritdoc/>
    public void SetLearningRate(double learningRate)
    {
        OptionGuard.Positive(learningRate, nameof(learningRate));
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = learningRate;
    }

    /// <inheritdoc/>
    /// <remarks>A non-finite loss is reported without updating the weights (<see cref="StepResult.Skipped"/>).</remarks>
    public StepResult Step(Tensor x, Tensor y)
    {
        _optimizer.zero_grad();
        var loss = _likelihood.Loss(_model.call(x), y);
        double value = loss.ToDouble();
        if (!double.IsFinite(value)) return new StepResult(value, Skipped: true);
        loss.backward();
        _optimizer.step();
        return new StepResult(value);
    }

    /// <inheritdoc/>
    public void Dispose() => _optimizer.Dispose();
}
