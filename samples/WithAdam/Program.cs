// Sample: the natural-gradient preconditioner composed with TorchSharp's Adam. The preconditioner rewrites
// .grad after the backward pass and Adam consumes it like any gradient; the same model, initial weights and
// batches are also trained by Adam alone. The inputs are strongly correlated (ill-conditioned), where a
// Fisher preconditioner helps most. Prints the loss on the whole training set at a few steps, then test accuracy.
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

const int Steps = 200, BatchSize = 128, Features = 10, Classes = 3;
int[] checkpoints = { 0, 25, 50, 100, Steps };
torch.set_num_threads(1);

// Latent z ~ N(0, I) labelled by a random linear teacher; the model sees x = z diag(s) Q with scales s from 1
// down to 1e-2 and a random rotation Q, so the inputs' covariance has condition number 1e4 and its eigenvectors
// are not the coordinate axes (a per-coordinate scaling such as Adam's cannot undo it; the Fisher can).
using var data = new Generator(11);
var rotation = torch.linalg.qr(torch.randn(Features, Features, generator: data)).Q;
var mixing = torch.diag(torch.logspace(0, -2, Features)).mm(rotation);
var teacher = torch.randn(Features, Classes, generator: data);
(Tensor X, Tensor Y) Make(int n)
{
    var z = torch.randn(n, Features, generator: data);
    return (z.mm(mixing), z.mm(teacher).argmax(1));
}
var (trainX, trainY) = Make(4096);
var (testX, testY) = Make(1024);
var likelihood = new CategoricalLikelihood();

torch.manual_seed(2);
var initial = nn.Sequential(("fc1", nn.Linear(Features, 32)), ("act", nn.Tanh()), ("fc2", nn.Linear(32, Classes)));

Console.WriteLine($"MLP {Features}-32-{Classes}, {Steps} steps of batch {BatchSize}, Adam(lr 0.03)");
Console.WriteLine($"{"optimiser",-26} " + string.Join(" ", checkpoints.Select(c => $"{"loss@" + c,9}")) + "  test accuracy");
foreach (bool natural in new[] { true, false })
{
    var model = nn.Sequential(("fc1", nn.Linear(Features, 32)), ("act", nn.Tanh()), ("fc2", nn.Linear(32, Classes)));
    model.load_state_dict(initial.state_dict());
    using var adam = torch.optim.Adam(model.parameters(), lr: 0.03);
    using var ngd = natural
        ? new NaturalGradientPreconditioner(model, likelihood, new PreconditionerOptions
        {
            Structure = CurvatureStructure.BlockDiagonal,  // a dense Fisher block per layer (33·32 and 33·3 parameters)
            Fisher = FisherKind.Exact,                     // the true Fisher: diag(π) − ππᵀ pulled back through the network
            Damping = 1e-2,
        })
        : null;
    using var order = new Generator(5);
    var losses = new List<double>();
    for (int step = 0; step <= Steps; step++)
    {
        using var scope = torch.NewDisposeScope();
        if (checkpoints.Contains(step))
            using (torch.no_grad()) losses.Add(likelihood.Loss(model.call(trainX), trainY).ToDouble());
        if (step == Steps) break;

        var index = torch.randint(0, trainX.shape[0], new long[] { BatchSize }, generator: order);
        var (x, y) = (trainX.index_select(0, index), trainY.index_select(0, index));
        adam.zero_grad();
        var output = model.call(x);
        if (ngd is not null)
        {
            ngd.Backward(output, y);   // loss.backward() and the Fisher statistics
            ngd.Precondition();        // .grad ← (F + λI)⁻¹ .grad; Adam then sees the natural gradient
        }
        else
        {
            likelihood.Loss(output, y).backward();
        }
        adam.step();
    }
    using (torch.no_grad())
    {
        string name = natural ? "natural gradient + Adam" : "Adam";
        Console.WriteLine($"{name,-26} " + string.Join(" ", losses.Select(l => $"{l,9:F4}"))
            + $"  {likelihood.Accuracy(model.call(testX), testY)!.Value,13:F3}");
    }
}
