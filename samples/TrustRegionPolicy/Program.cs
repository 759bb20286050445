// Sample: natural policy gradient with a KL trust region (TRPO, Schulman et al. 2015; seed 002 links it to the natural
// gradient). Task: a slippery corridor of 7 cells; the agent starts in cell 2, "right" moves right with probability 0.9
// (else left), "left" the opposite; entering cell 6 pays +1, entering cell 0 pays −1, every move costs 0.02; horizon 12.
// Policy: tabular softmax π(a|s) = softmax(θ_s). Everything is exact (no sampling): J(θ) by propagating the state
// distribution, ∇J by autograd, the Fisher of the mean KL F = Σ_s w_s (diag π_s − π_s π_sᵀ) (w = normalised state
// visitation), singular (each state's constant direction), so F x = ∇J is solved by the library's MINRES-QLP, whose
// minimum-length solution is the pseudo-inverse one. Step: θ ← θ + β x with β = √(2δ / xᵀFx) (the KL bound δ), then a
// backtracking line search that halves the step until the exact mean KL ≤ δ and J improves.
using NaturalGradient.Solvers;
using TorchSharp;
using static TorchSharp.torch;

torch.set_default_dtype(ScalarType.Float64);
const int cells = 7, start = 2, horizon = 12, actions = 2;
const double slip = 0.1, stepCost = 0.02, delta = 0.01;
var interior = Enumerable.Range(1, cells - 2).ToArray();
var unit = Enumerable.Range(0, cells).Select(i => { var e = zeros(cells); e[i] = 1.0; return e; }).ToArray();   // e₀ … e₆

// Expected return J(θ) and the (unnormalised) visitation d(s) of the interior states over the horizon.
(Tensor J, Tensor Visits) Evaluate(Tensor theta)
{
    var p = zeros(cells);
    p[start] = 1.0;
    var j = zeros(1);
    var visits = zeros(cells);
    var pi = theta.softmax(1);                                         // interior × actions
    for (int t = 0; t < horizon; t++)
    {
        var next = zeros(cells);
        foreach (int s in interior)
        {
            var mass = p[s];
            visits = visits + unit[s] * mass.detach();
            var right = pi[s - 1, 1] * (1 - slip) + pi[s - 1, 0] * slip;   // probability of moving right
            var left = 1 - right;
            next = next + unit[s + 1] * (mass * right)
                        + unit[s - 1] * (mass * left);
            j = j - stepCost * mass;
            if (s + 1 == cells - 1) j = j + mass * right;
            if (s - 1 == 0) j = j - mass * left;
        }
        next[0] = 0.0;                                                  // absorbing: the episode ends
        next[cells - 1] = 0.0;
        p = next;
    }
    return (j.sum(), visits.index_select(0, tensor(interior.Select(i => (long)i).ToArray())));
}

Tensor MeanKl(Tensor oldTheta, Tensor newTheta, Tensor weights)
{
    var pOld = oldTheta.softmax(1);
    var kl = (pOld * (pOld.log() - newTheta.log_softmax(1))).sum(1);
    return (weights * kl).sum();
}

var theta = zeros(interior.Length, actions);
var (j0, _) = Evaluate(theta);
Console.WriteLine($"TRPO on a slippery corridor ({cells} cells, start {start}, horizon {horizon}), KL bound δ = {delta}");
Console.WriteLine($"iteration 0: J = {j0.item<double>():F6}");
var solver = new MinresQlp();
for (int k = 1; k <= 30; k++)
{
    var th = theta.detach().requires_grad_(true);
    var (j, visits) = Evaluate(th);
    var g = autograd.grad(new[] { j }, new[] { th })[0].flatten().detach();
    var w = visits / visits.sum();
    var pi = theta.softmax(1);
    Tensor FisherTimes(Tensor v)
    {
        var vm = v.reshape(interior.Length, actions);
        var fv = pi * vm - pi * (pi * vm).sum(1, keepdim: true);          // (diag π − ππᵀ) v per state
        return (w.unsqueeze(1) * fv).flatten();
    }
    var report = solver.Solve(FisherTimes, g, null, new SolverOptions { MaxIterations = 200, RelativeTolerance = 1e-10 });
    var x = report.X;
    double quadratic = x.dot(FisherTimes(x)).item<double>();
    if (!(quadratic > 1e-14))
    {
        Console.WriteLine($"iteration {k}: converged (xᵀFx = {quadratic:E1}: the natural gradient vanishes)");
        break;
    }
    double beta = Math.Sqrt(2 * delta / quadratic);
    double jOld = j.item<double>(), fraction = 1, kl = 0, jNew = jOld;
    bool accepted = false;
    for (int halving = 0; halving < 12; halving++, fraction *= 0.5)
    {
        var candidate = theta + fraction * beta * x.reshape(interior.Length, actions);
        kl = MeanKl(theta, candidate, w).item<double>();
        jNew = Evaluate(candidate).J.item<double>();
        if (kl <= delta && jNew > jOld)
        {
            theta = candidate;
            accepted = true;
            break;
        }
    }
    Console.WriteLine($"iteration {k}: J = {(accepted ? jNew : jOld):F6}  KL = {(accepted ? kl : 0):F6}  step fraction = {(accepted ? fraction : 0):F4}  " +
                      $"predicted KL = {0.5 * beta * beta * quadratic:F6}  MINRES-QLP {report.Status} in {report.Iterations}");
    if (!accepted) break;
}
var (jFinal, _) = Evaluate(theta);
var right = theta.softmax(1)[.., 1];
Console.WriteLine($"final J = {jFinal.item<double>():F6}; π(right | s) = ({string.Join(", ", right.data<double>().Select(v => v.ToString("F4")))})");
// The best return: always move right (computed by the same evaluator with a near-deterministic policy).
var greedy = stack(new[] { full(interior.Length, -20.0), full(interior.Length, 20.0) }, 1);
Console.WriteLine($"always-right J = {Evaluate(greedy).J.item<double>():F6}");
