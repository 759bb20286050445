// Sample: natural-gradient variational inference (seed 002): a mean-field Gaussian posterior q(w) = Πᵢ N(μᵢ, σᵢ²) for
// Bayesian linear regression y = X w + ε, ε ~ N(0, s²), prior w ~ N(0, α⁻¹ I). The Fisher of q in (μᵢ, σᵢ) is
// diag(1/σᵢ², 2/σᵢ²), so the natural-gradient step scales the mean's gradient by σᵢ² and the scale's by σᵢ²/2.
// The negative ELBO is closed-form here (E_q‖y − Xw‖² = ‖y − Xμ‖² + Σᵢ σᵢ² ‖X_:,i‖²), so both methods are exact and
// deterministic; the optimum is known: μ* = Λ⁻¹ Xᵀy / s² (the exact posterior mean) and σᵢ*² = 1 / Λᵢᵢ, Λ = XᵀX/s² + αI.
using TorchSharp;
using static TorchSharp.torch;

torch.set_default_dtype(ScalarType.Float64);
const int n = 40, d = 3;
const double noise = 0.5, priorPrecision = 1.0, tolerance = 1e-8;
// Deterministic design and targets (so the test can recompute the optimum): correlated, unevenly scaled features.
var xs = new double[n, d];
var ys = new double[n];
for (int i = 0; i < n; i++)
{
    double t = i / (double)(n - 1);
    xs[i, 0] = 1;
    xs[i, 1] = 4 * Math.Sin(3 * t);
    xs[i, 2] = 0.5 * Math.Cos(5 * t) + 0.3 * xs[i, 1];
    ys[i] = 0.7 - 0.4 * xs[i, 1] + 1.5 * xs[i, 2] + 0.2 * Math.Sin(17 * t);
}
var x = tensor(xs);
var y = tensor(ys);

// Negative ELBO (up to a constant) and its gradient with respect to (μ, σ), by autograd.
(double Value, Tensor GradMu, Tensor GradSigma) NegativeElbo(Tensor mu, Tensor sigma)
{
    var m = mu.detach().requires_grad_(true);
    var s = sigma.detach().requires_grad_(true);
    var residual = y - x.mv(m);
    var expectedSquares = residual.square().sum() + (s.square() * x.square().sum(dim: 0)).sum();
    var loss = expectedSquares / (2 * noise * noise) + 0.5 * priorPrecision * (m.square().sum() + s.square().sum()) - s.log().sum();
    var grads = autograd.grad(new[] { loss }, new[] { m, s });
    return (loss.item<double>(), grads[0], grads[1]);
}

var lambda = x.t().mm(x) / (noise * noise) + priorPrecision * eye(d);
var muStar = linalg.solve(lambda, x.t().mv(y) / (noise * noise));
var sigmaStar = lambda.diagonal().reciprocal().sqrt();
double Error(Tensor mu, Tensor sigma) => Math.Max((mu - muStar).abs().max().item<double>(), (sigma - sigmaStar).abs().max().item<double>());

// Both methods start at μ₀ = 0, σ₀ = 0.01 < σ*. From below, the natural step on σ, σ ← σ (1 + (η/2)(1 − σ²Λᵢᵢ)), rises
// monotonically to σ* (contracting by 1 − η near it), and σ² ≤ 1/Λᵢᵢ keeps the mean's step η σ² ∇μ stable (η ρ(σ²Λ) ≤ 3η < 2).
// From σ₀ ≫ σ* (e.g. the prior's σ = 1) a step of η = 0.5 would overshoot below zero.
const double sigma0 = 0.01;
// Natural gradient: μ ← μ − η σ² ∇μ, σ ← σ − η (σ²/2) ∇σ (Fisher diag(1/σ², 2/σ²)), η = 0.5.
var (muN, sigmaN) = (zeros(d), full(d, sigma0));
int naturalIterations = 0;
while (naturalIterations < 100_000 && Error(muN, sigmaN) > tolerance)
{
    var (_, gMu, gSigma) = NegativeElbo(muN, sigmaN);
    muN = muN - 0.5 * sigmaN.square() * gMu;
    sigmaN = sigmaN - 0.5 * (sigmaN.square() / 2) * gSigma;
    naturalIterations++;
}

// Plain gradient descent with step 1 / (largest curvature on the path): λmax(Λ) for μ, Λᵢᵢ + 1/σᵢ² ≤ max Λᵢᵢ + 1/σ₀² for σ
// (σ only grows towards σ* where σ₀ < σ*, and 1/σ² ≤ Λᵢᵢ where σ ≥ σ*).
double step = 1 / Math.Max(linalg.eigvalsh(lambda).max().item<double>(), lambda.diagonal().max().item<double>() + 1 / (sigma0 * sigma0));
var (muG, sigmaG) = (zeros(d), full(d, sigma0));
int plainIterations = 0;
const int budget = 10_000;
while (plainIterations < budget && Error(muG, sigmaG) > tolerance)
{
    var (_, gMu, gSigma) = NegativeElbo(muG, sigmaG);
    muG = muG - step * gMu;
    sigmaG = sigmaG - step * gSigma;
    plainIterations++;
}

string Vector(Tensor t) => string.Join(", ", t.data<double>().Select(v => v.ToString("F6")));
Console.WriteLine($"Mean-field Gaussian VI for Bayesian linear regression (n = {n}, d = {d}, noise s = {noise}, prior precision α = {priorPrecision})");
Console.WriteLine($"exact posterior mean  μ* = ({Vector(muStar)})");
Console.WriteLine($"mean-field scales     σ* = ({Vector(sigmaStar)})");
Console.WriteLine($"natural gradient      μ  = ({Vector(muN)})");
Console.WriteLine($"natural gradient      σ  = ({Vector(sigmaN)})");
Console.WriteLine($"natural gradient iterations to |error| <= 1e-8: {naturalIterations}");
Console.WriteLine(plainIterations < budget
    ? $"gradient descent iterations to |error| <= 1e-8: {plainIterations} (step {step:G4})"
    : $"gradient descent iterations to |error| <= 1e-8: more than {budget} (step {step:G4}; error {Error(muG, sigmaG):E2} after {budget})");
Console.WriteLine($"negative ELBO at the optimum: {NegativeElbo(muN, sigmaN).Value:F6}");
