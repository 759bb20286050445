using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Training;

/// <summary>Full-set loss and accuracy of a model, in batches, without gradients.</summary>
public static class Evaluator
{
    /// <summary>Mean NLL over all of <paramref name="x"/> (NaN for an empty set) and, for classification, the accuracy.</summary>
    /// <param name="model">The model; put in eval mode for the pass and back in train mode afterwards.</param>
    /// <param name="likelihood">Gives the per-example NLL and the accuracy.</param>
    /// <param name="x">Inputs, batch first.</param>
    /// <param name="y">Targets, batch first.</param>
    /// <param name="batchSize">Examples per forward pass, ≥ 1.</param>
    public static (double Loss, double? Accuracy) Evaluate(Module<Tensor, Tensor> model, ILikelihood likelihood, Tensor x, Tensor y, int batchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"batchSize must be ≥ 1, got {batchSize}");
        long n = x.shape[0];
        if (n == 0) return (double.NaN, null);
        double lossSum = 0, correct = 0;
        bool hasAccuracy = true;
        model.eval();
        try
        {
            using var _ = no_grad();
            for (long start = 0; start < n; start += batchSize)
            {
                using var scope = NewDisposeScope();
                long size = Math.Min(batchSize, n - start);
                var xb = x.narrow(0, start, size);
                var yb = y.narrow(0, start, size);
                var output = model.call(xb);
                lossSum += likelihood.PerExampleLoss(output, yb).to_type(ScalarType.Float64).sum().ToDouble();
                var acc = likelihood.Accuracy(output, yb);
                if (acc is null) hasAccuracy = false;
                else correct += acc.Value * size;
            }
        }
        finally
        {
            model.train();
        }
        return (lossSum / n, hasAccuracy ? correct / n : null);
    }
}
