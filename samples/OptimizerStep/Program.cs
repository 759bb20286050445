// README: NaturalGradientDescent, one object that runs the backward pass, the K-FAC solve, momentum and a KL clip.
using NaturalGradient.Curvature;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

torch.manual_seed(0);
var x = torch.randn(256, 4);
var y = (x.sum(1, keepdim: true).sin() + 0.1 * torch.randn(256, 1)).detach();

var model = nn.Sequential(("fc1", nn.Linear(4, 32)), ("act", nn.Tanh()), ("fc2", nn.Linear(32, 1)));
using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
{
    LearningRate = 0.1,
    Momentum = 0.5,
    KlClip = 1e-2,                              // trust region on the predicted KL ½uᵀFu of each step
    Preconditioner = new PreconditionerOptions  // Fisher defaults to the empirical one, from this same backward pass
    {
        Structure = CurvatureStructure.Kfac,    // Kronecker factors, inverses every 10 steps
        Damping = 1e-2,
    },
});

double loss = 0;
for (int step = 1; step <= 100; step++)
{
    using var scope = torch.NewDisposeScope();  // frees this step's native tensors
    var report = ngd.Step(x, y);                // forward, backward, solve, update; the loss is ½ mean squared error
    loss = report.Loss;
    if (step % 25 == 0) Console.WriteLine($"step {step}: loss {loss:F5}, predicted KL {report.PredictedKl:E1}");
}
// The step computes no weight gradient where the layer statistics give it, so .grad stays unset there.
Console.WriteLine($"fc1.weight.grad after the steps: {(model.parameters().First().grad is null ? "unset" : "set")}");
return loss < 0.02 ? 0 : 1;
