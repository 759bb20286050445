using NaturalGradient.Training.Data;
using NaturalGradient.Likelihoods;
using NaturalGradient.Training.Models;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Training.Experiments.OrderVariance;

/// <summary>One method's result for one resampled segment: output variance across runs and the runs' test metrics.</summary>
public sealed record SegmentResult(string Method, int Segment, double Variance, IReadOnlyList<double> TestLoss, IReadOnlyList<double> TestAccuracy);

/// <summary>
/// Trains one model per (segment, run) on its stream, in order, once (online), from the same initial weights, and
/// measures the variance of the final softmax outputs on held-out inputs across the runs of each segment.
/// </summary>
public sealed class OrderVarianceRunner
{
    private readonly Dataset _data;
    private readonly ModelSpec _model;
    private readonly int _batchSize;
    private readonly Tensor _holdoutX, _holdoutY;

    public OrderVarianceRunner(Dataset data, ModelSpec model, int batchSize, int holdout)
    {
        if (data.Task != TaskKind.Classification) throw new ArgumentException("the order-variance experiment needs a classification data set", nameof(data));
        _data = data;
        _model = model;
        _batchSize = batchSize;
        long h = Math.Min(holdout, data.TestCount);
        _holdoutX = data.TestX.narrow(0, 0, h);
        _holdoutY = data.TestY.narrow(0, 0, h);
    }

    public SegmentResult RunSegment(OptimizerSettings settings, StreamPlan plan, int segment, int runs, long seed)
    {
        var outputs = new List<Tensor>();
        var losses = new List<double>();
        var accuracies = new List<double>();
        try
        {
            for (int r = 0; r < runs; r++)
            {
                var (probabilities, loss, accuracy) = Train(settings, plan.Stream(segment, r), seed);
                outputs.Add(probabilities);
                losses.Add(loss);
                accuracies.Add(accuracy);
            }
            return new SegmentResult(settings.Name, segment + 1, OutputVariance.Of(outputs), losses, accuracies);
        }
        finally
        {
            foreach (var o in outputs) o.Dispose();
        }
    }

    private (Tensor Probabilities, double Loss, double Accuracy) Train(OptimizerSettings settings, int[] stream, long seed)
    {
        manual_seed(seed);
        using var model = ModelFactory.Build(_model, _data.InputShape, _data.OutputCount, ScalarType.Float32);
        var likelihood = new CategoricalLikelihood();
        using var generator = new Generator((ulong)seed);
        long steps = (stream.Length + _batchSize - 1) / _batchSize;
        using var optimizer = OptimizerCatalog.Default.Create(new OptimizerContext
        {
            Model = model, Likelihood = likelihood, Settings = settings, Generator = generator,
            StepsPerEpoch = steps, TotalSteps = steps, BatchSize = _batchSize,
        });
        using var order = tensor(stream.Select(i => (long)i).ToArray());
        for (long start = 0; start < stream.Length; start += _batchSize)
        {
            using var scope = NewDisposeScope();
            var idx = order.narrow(0, start, Math.Min(_batchSize, stream.Length - start));
            var x = _data.TrainX.index_select(0, idx).to_type(ScalarType.Float32);
            var result = optimizer.Step(x, _data.TrainY.index_select(0, idx));
            if (!double.IsFinite(result.Loss))
                throw new ArithmeticException($"{settings.Name} diverged at step {start / _batchSize + 1} (loss {result.Loss}): lower its learning rate or raise the damping");
        }
        using var _ = no_grad();
        using var evalScope = NewDisposeScope();
        var output = model.call(_holdoutX.to_type(ScalarType.Float32));
        double loss = likelihood.Loss(output, _holdoutY).ToDouble();
        double accuracy = likelihood.Accuracy(output, _holdoutY) ?? double.NaN;
        return (softmax(output, 1).DetachFromDisposeScope(), loss, accuracy);
    }
}
