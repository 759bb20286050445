// Sample: K-FAC natural gradient on a custom Module with Conv2d layers and a Linear head, composed with
// torch.optim.SGD, next to the same model trained by SGD alone. Both start from the same weights and see the
// same batches; the loss on the whole training set is printed at a few steps, then the test loss and accuracy.
using ConvNetSample;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

const int Steps = 150, BatchSize = 64;
int[] checkpoints = { 0, 25, 50, 100, Steps };
torch.set_num_threads(1);
using var data = new Generator(7);
var (trainX, trainY) = Bars.Make(2048, data);
var (testX, testY) = Bars.Make(512, data);
var likelihood = new CategoricalLikelihood();

torch.manual_seed(1);
var initial = new BarsNet();

Console.WriteLine($"BarsNet ({initial.parameters().Sum(p => p.numel())} parameters), {Steps} steps of batch {BatchSize}");
Console.WriteLine($"{"optimiser",-30} " + string.Join(" ", checkpoints.Select(c => $"{"loss@" + c,9}")) + "  test loss  test accuracy");
foreach (bool natural in new[] { true, false })
{
    var model = new BarsNet();
    model.load_state_dict(initial.state_dict());
    double lr = natural ? 0.01 : 0.05;
    using var sgd = torch.optim.SGD(model.parameters(), learningRate: lr, momentum: 0.9);
    using var kfac = natural
        ? new NaturalGradientPreconditioner(model, likelihood, new PreconditionerOptions
        {
            Structure = CurvatureStructure.Kfac,   // Kronecker factors A ⊗ G for both Conv2d layers and the head
            Fisher = FisherKind.MonteCarlo,        // one target sampled from the model per example
            Damping = 0.1,
            Kfac = new KfacOptions { InverseUpdatePeriod = 5 },
        })
        : null;
    using var order = new Generator(3);
    var losses = new List<double>();
    int skipped = 0;
    for (int step = 0; step <= Steps; step++)
    {
        using var scope = torch.NewDisposeScope();
        if (checkpoints.Contains(step))
            using (torch.no_grad()) losses.Add(likelihood.Loss(model.call(trainX), trainY).ToDouble());
        if (step == Steps) break;

        var index = torch.randint(0, trainX.shape[0], new long[] { BatchSize }, generator: order);
        var (x, y) = (trainX.index_select(0, index), trainY.index_select(0, index));
        sgd.zero_grad();
        var output = model.call(x);            // call(): the preconditioner's hooks see every layer
        bool finite;
        if (kfac is not null)
        {
            kfac.Backward(output, y);          // mean cross-entropy, backward, K-FAC statistics
            // .grad ← (A ⊗ G + damping)⁻¹ .grad per layer; not applied when the statistics or the solve are not finite
            finite = kfac.Precondition().Applied;
        }
        else
        {
            likelihood.Loss(output, y).backward();
            finite = model.parameters().All(p => p.grad is null || p.grad.isfinite().all().item<bool>());
        }
        // A step with a non-finite gradient is skipped, as NaturalGradientDescent.Step skips it: libtorch's CPU
        // Conv2d input gradient has been seen to come back with NaN entries now and then (docs/TORCHSHARP-ON-LINUX.md, "Conv2d input gradients").
        if (finite) sgd.step();
        else skipped++;
    }
    using (torch.no_grad())
    {
        var output = model.call(testX);
        string name = natural ? $"K-FAC + SGD(lr {lr}, mom 0.9)" : $"SGD(lr {lr}, mom 0.9)";
        Console.WriteLine($"{name,-30} " + string.Join(" ", losses.Select(l => $"{l,9:F4}"))
            + $"  {likelihood.Loss(output, testY).ToDouble(),9:F4}  {likelihood.Accuracy(output, testY)!.Value,13:F3}");
        if (skipped > 0) Console.WriteLine($"  ({name}: {skipped} of {Steps} steps skipped, non-finite gradient)");
    }
}
