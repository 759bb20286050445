// Sample: seed 002's worked examples of the natural gradient, computed by the library's exact-Fisher
// preconditioner on tiny TorchSharp models (float64): a parameter θ enters the network output as the weight of
// a bias-free Linear layer fed a constant input, so the layer's exact Fisher is the Fisher of the distribution.
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

torch.set_default_dtype(ScalarType.Float64);
var exactFisher = new PreconditionerOptions { Structure = CurvatureStructure.Exact, Fisher = FisherKind.Exact, Damping = 0 };
double Sigmoid(double t) => 1 / (1 + Math.Exp(-t));

// ── Example 1: one Bernoulli observation y = 1, logit θ, θ₀ = 0, step size η = 1 (seed 002, example 1) ──
Console.WriteLine("Example 1: Bernoulli, logit θ, θ₀ = 0, y = 1, η = 1");
{
    var model = nn.Sequential(("theta", nn.Linear(1, 1, hasBias: false)));
    using (no_grad()) model.parameters().First().zero_();
    using var ngd = new NaturalGradientPreconditioner(model, new BernoulliLikelihood(), exactFisher);
    ngd.Backward(model.call(ones(1, 1)), ones(1, 1));                 // ℓ(θ) = −log σ(θ)
    double gradient = ngd.GradientMatrices()[0].item<double>();          // σ(0) − 1
    double fisher = ((ExactCurvature)ngd.Curvature).ToDense().item<double>(); // σ(0)(1 − σ(0))
    ngd.Precondition();
    double natural = model.parameters().First().grad!.item<double>();
    Console.WriteLine($"  gradient {gradient:F4}   Fisher {fisher:F4}   natural gradient {natural:F4}");
    Console.WriteLine($"  plain step:   θ = {-gradient:F4}, σ(θ) = {Sigmoid(-gradient):F4}");
    Console.WriteLine($"  natural step: θ = {-natural:F4}, σ(θ) = {Sigmoid(-natural):F4}");
}

// ── Example 2: mean μ of N(μ, Σ), Σ = [[2, 1], [1, 2]], loss ½‖μ − y‖², y = (1, 2), μ₀ = 0 (seed 002, example 2) ──
Console.WriteLine("Example 2: bivariate Gaussian N(μ, Σ), Σ = [[2, 1], [1, 2]], μ₀ = (0, 0), y = (1, 2)");
{
    var sigma = tensor(new double[,] { { 2, 1 }, { 1, 2 } });
    var model = nn.Sequential(("mu", nn.Linear(1, 2, hasBias: false)));
    using (no_grad()) model.parameters().First().zero_();
    using var ngd = new NaturalGradientPreconditioner(model, new GaussianLikelihood(sigma), exactFisher);
    var mu = model.call(ones(1, 1));
    ngd.CollectMetric(mu);                                               // the Fisher of N(μ, Σ) with respect to μ
    var y = tensor(new double[] { 1, 2 });
    var gradient = (mu.detach()[0] - y).reshape(2, 1);                   // ∇ ½‖μ − y‖² = μ − y
    var fisher = ((ExactCurvature)ngd.Curvature).ToDense();
    var natural = ngd.Solve(new[] { gradient }, damping: 0)[0];          // F⁻¹ ∇L
    Console.WriteLine($"  Fisher [[{fisher[0, 0].item<double>():F4}, {fisher[0, 1].item<double>():F4}], [{fisher[1, 0].item<double>():F4}, {fisher[1, 1].item<double>():F4}]] (= Σ⁻¹)");
    Console.WriteLine($"  gradient ({gradient[0, 0].item<double>():F4}, {gradient[1, 0].item<double>():F4})   natural gradient ({natural[0, 0].item<double>():F4}, {natural[1, 0].item<double>():F4}) (= Σ ∇L)");
}

// ── Example 3: reparameterisation. Logit = c·ψ for a scale c: the same Bernoulli model in coordinates ψ = θ / c ──
Console.WriteLine("Example 3: reparameterisation θ = c·ψ of example 1; one step (η = 1) from ψ₀ = 0, then σ(θ)");
{
    foreach (double c in new[] { 0.1, 1.0, 10.0 })
    {
        var model = nn.Sequential(("psi", nn.Linear(1, 1, hasBias: false)));
        using (no_grad()) model.parameters().First().zero_();
        using var ngd = new NaturalGradientPreconditioner(model, new BernoulliLikelihood(), exactFisher);
        ngd.Backward(model.call(full(1, 1, c)), ones(1, 1));
        double plain = -ngd.GradientMatrices()[0].item<double>();        // Δψ of a plain step
        ngd.Precondition();
        double natural = -model.parameters().First().grad!.item<double>(); // Δψ of a natural step
        Console.WriteLine($"  c = {c,4}:  plain step σ(θ) = {Sigmoid(c * plain):F4}   natural step σ(θ) = {Sigmoid(c * natural):F4}");
    }
}

// ── Example 4: the categorical Fisher diag(π) − ππᵀ of K = 4 logits has rank K − 1 (seed 002, categorical) ──
Console.WriteLine("Example 4: categorical, K = 4 logits z = (1.0, 0.5, −0.5, 0.2), label 0");
{
    var z = tensor(new double[] { 1.0, 0.5, -0.5, 0.2 });
    var fisher = new CategoricalLikelihood().OutputFisher(z.unsqueeze(0))[0];
    var eigenvalues = linalg.eigvalsh(fisher);
    double largest = eigenvalues.max().item<double>();
    long rank = eigenvalues.gt(1e-12 * largest).sum().item<long>();
    Console.WriteLine($"  eigenvalues of the Fisher: {string.Join(", ", eigenvalues.data<double>().Select(v => v.ToString("0.00e+00")))}");
    Console.WriteLine($"  rank {rank} of {z.shape[0]}; ‖F·1‖ = {fisher.mv(ones(4)).norm().item<double>():0.0e+00} (the constant direction is its null space)");

    // The damped natural gradient (F + λI)⁻¹∇ through the preconditioner approaches the pseudo-inverse solution F⁺∇.
    var model = nn.Sequential(("logits", nn.Linear(1, 4, hasBias: false)));
    using (no_grad()) model.parameters().First().copy_(z.reshape(4, 1));
    using var ngd = new NaturalGradientPreconditioner(model, new CategoricalLikelihood(), exactFisher);
    ngd.Backward(model.call(ones(1, 1)), tensor(new long[] { 0 }));
    var gradient = ngd.GradientMatrices()[0];                           // π − e₀, orthogonal to 1
    var pseudo = linalg.pinv(fisher).mm(gradient);
    foreach (double lambda in new[] { 1e-1, 1e-3, 1e-6 })
    {
        var damped = ngd.Solve(new[] { gradient }, lambda)[0];
        Console.WriteLine($"  λ = {lambda:0e+00}: ‖(F + λI)⁻¹∇ − F⁺∇‖ = {(damped - pseudo).norm().item<double>():0.00e+00}");
    }
}
