// README quick-start: natural gradient (TENGraD) on an ordinary TorchSharp model, composed with torch.optim.SGD.
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

torch.manual_seed(0);
var x = torch.randn(256, 4);
var y = (x.sum(1, keepdim: true).sin() + 0.1 * torch.randn(256, 1)).detach();

var model = nn.Sequential(("fc1", nn.Linear(4, 32)), ("act", nn.Tanh()), ("fc2", nn.Linear(32, 1)));
using var sgd = torch.optim.SGD(model.parameters(), learningRate: 0.1, momentum: 0.5);
using var ngd = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), new PreconditionerOptions
{
    Structure = CurvatureStructure.Tengrad,  // exact block-diagonal natural gradient, O(m²) memory per layer
    Fisher = FisherKind.Exact,               // the true Fisher (= Gauss-Newton) of the Gaussian likelihood
    Damping = 1e-2,
});

double loss = 0;
for (int step = 0; step < 100; step++)
{
    using var scope = torch.NewDisposeScope();  // frees this step's native tensors
    sgd.zero_grad();
    var output = model.call(x);                // call(), not forward(): the preconditioner's hooks fire
    loss = ngd.Backward(output, y).ToDouble();  // mean NLL, loss.backward() and the Fisher statistics
    ngd.Precondition();                        // every covered .grad ← (F + λI)⁻¹ .grad
    sgd.step();
}
Console.WriteLine($"final training loss {loss:F5}");
return loss < 0.02 ? 0 : 1;
