using NaturalGradient.Likelihoods;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Bench.Perf;

/// <summary>
/// The "lean" reference steps of the performance issue: minimal TorchSharp steps, written without the library, that
/// do the same math as <c>NaturalGradientDescent.Step</c> with the benchmark's settings (empirical Fisher, constant
/// damping λ, momentum μ, no KL clip) on an MLP of Linear layers. They keep nothing the math does not need: no
/// statistics guard, no finiteness read, no coverage or options machinery. The ratio library / lean is what the
/// library's own machinery costs on top of the method.
/// </summary>
/// <remarks>
/// <para>Both record each Linear layer's input a and output z with forward hooks, keep z's gradient from the one
/// <c>loss.backward()</c>, and take δ = m ∂L/∂z (the per-example output gradients of the mean loss), Ā = [a 1],
/// ḡ = [∇W ∇b] (W̄ = [W b]); then buf ← μ buf + Δ and W̄ ← W̄ − η buf.</para>
/// <para>K-FAC: every <c>factorPeriod</c> steps (from step 0) A ← βA + (1 − β) ĀᵀĀ/m and G ← βG + (1 − β) δᵀδ/m (one
/// addmm each, the first step takes the batch factors), every <c>inversePeriod</c> steps (from step 0) the Cholesky inverses of A + π√λ I and G + √λ/π I with
/// π² = (tr A/in')/(tr G/out), and Δ = (G + √λ/π I)⁻¹ ḡ (A + π√λ I)⁻¹ (Martens &amp; Grosse 2015 §6.3).</para>
/// <para>EKFAC (George et al. 2018) with the library's schedule and factored damping: A and G as K-FAC's; every
/// <c>inversePeriod</c> steps (from step 0) the eigendecompositions A = Q_A diag(eᴬ) Q_Aᵀ, G = Q_G diag(eᴳ) Q_Gᵀ (float32 eigh,
/// eigenvalues clamped at 0) and π; S = (1/m) ((δQ_G)²)ᵀ(ĀQ_A)² restarted on a basis change, else averaged in with β on
/// factor steps; Δ = Q_G [((δQ_G)ᵀ(ĀQ_A)/m) ⊘ (S + π√λ eᴳ1ᵀ + (√λ/π) 1eᴬᵀ + λ)] Q_Aᵀ.</para>
/// <para>Diagonal: the layer's weight and bias kept apart, as a hand-written step would (no Ā, no ḡ):
/// D_W = (1/m) (δ∘δ)ᵀ(a∘a) and D_b = (1/m) Σᵢ δᵢ∘δᵢ, Δ_W = ∇W ⊘ (D_W + λ), Δ_b = ∇b ⊘ (D_b + λ), each with its own momentum buffer.</para>
/// <para>TENGraD (seed 000 eq 40–43, in the model's dtype): K = (ĀĀᵀ) ∘ (δδᵀ) + λm I, u = K⁻¹ rowsum((δḡ) ∘ Ā) by
/// Cholesky, Δ = (ḡ − (δ ∘ u)ᵀĀ)/λ; for a layer whose parameter side costs fewer multiply-adds (the library's rule,
/// <c>StructureCostModel.TengradPrefersParameterSpace</c>: the figure-5 nets' 21 × 1 head), J = rows δᵢ ⊗ āᵢ (m × p) and
/// Δ = (JᵀJ/m + λI)⁻¹ ḡ by a p × p Cholesky, as the library does.</para>
/// </remarks>
internal sealed class LeanStep : IDisposable
{
    private sealed class Layer
    {
        public required Linear Module { get; init; }
        public Tensor? Input, Output;
        public Tensor? A, G, AInverse, GInverse, Momentum, BiasMomentum;
        public Tensor? QA, QG, EA, EG, S;
        public double Pi = 1;
    }

    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly ILikelihood _likelihood;
    private readonly List<Layer> _layers = new();
    private readonly List<Action> _removers = new();
    private readonly string _method;
    private readonly double _lr, _momentum, _damping, _decay;
    private readonly int _inversePeriod, _factorPeriod;
    private long _step;

    /// <summary>The methods with a lean step.</summary>
    public static readonly string[] Methods = { "kfac", "ekfac", "tengrad", "diag" };

    /// <param name="method">
    /// "diag" (every step), "kfac" (factors every <paramref name="factorPeriod"/> steps, Cholesky inverses every <paramref name="inversePeriod"/>
    /// steps), "ekfac" (factors and S every <paramref name="factorPeriod"/> steps, eigenbases every <paramref name="inversePeriod"/>)
    /// or "tengrad".
    /// </param>
    public LeanStep(string method, nn.Module<Tensor, Tensor> model, ILikelihood likelihood, double lr, double momentum, double damping,
        int inversePeriod, int factorPeriod = 1, double factorDecay = 0.95)
    {
        if (!Methods.Contains(method)) throw new ArgumentException($"no lean step for '{method}'");
        _method = method;
        _model = model;
        _likelihood = likelihood;
        (_lr, _momentum, _damping, _inversePeriod, _factorPeriod, _decay) = (lr, momentum, damping, inversePeriod, factorPeriod, factorDecay);
        foreach (var (_, module) in model.named_modules())
        {
            if (module is not Linear linear) continue;
            var layer = new Layer { Module = linear };
            _layers.Add(layer);
            var hook = linear.register_forward_hook((_, input, output) =>
            {
                layer.Input = input.detach();
                layer.Output = output.alias();
                return null!;
            });
            _removers.Add(hook.remove);
        }
    }

    public void Step(Tensor x, Tensor y)
    {
        _model.zero_grad();
        var loss = _likelihood.Loss(_model.call(x), y);
        foreach (var l in _layers) l.Output!.retain_grad();
        loss.backward();
        long m = x.shape[0];
        using var _ = no_grad();
        foreach (var l in _layers)
        {
            if (_method == "diag") { Diagonal(l, m); continue; }
            var a = l.Input!;
            var abar = cat(new[] { a, ones(m, 1, dtype: a.dtype) }, 1);      // m × in'
            var delta = l.Output!.grad!.mul(m);                               // m × out
            var g = cat(new[] { l.Module.weight!.grad!, l.Module.bias!.grad!.unsqueeze(1) }, 1);   // out × in'
            var step = _method switch
            {
                "kfac" => Kfac(l, abar, delta, g, m),
                "ekfac" => Ekfac(l, abar, delta, m),
                _ => Tengrad(abar, delta, g, m),
            };
            if (l.Momentum is null) l.Momentum = step.clone().DetachFromDisposeScope();
            else l.Momentum.mul_(_momentum).add_(step);
            long inputs = a.shape[1];
            l.Module.weight!.add_(l.Momentum.narrow(1, 0, inputs), alpha: -_lr);
            l.Module.bias!.add_(l.Momentum.select(1, inputs), alpha: -_lr);
        }
        _step++;
    }

    private void Diagonal(Layer l, long m)
    {
        var a = l.Input!;
        var squares = l.Output!.grad!.square().mul_(m);                      // m (∂L/∂z)² = (1/m) δ∘δ: m × out
        var weightStep = l.Module.weight!.grad!.div_(squares.t().mm(a.square()).add_(_damping));
        var biasStep = l.Module.bias!.grad!.div_(squares.sum(dim: 0).add_(_damping));
        Accumulate(ref l.Momentum, weightStep);
        Accumulate(ref l.BiasMomentum, biasStep);
        l.Module.weight!.add_(l.Momentum!, alpha: -_lr);
        l.Module.bias!.add_(l.BiasMomentum!, alpha: -_lr);
    }

    private void Accumulate(ref Tensor? buffer, Tensor step)
    {
        if (buffer is null) buffer = step.clone().DetachFromDisposeScope();
        else buffer.mul_(_momentum).add_(step);
    }

    private Tensor Kfac(Layer l, Tensor abar, Tensor delta, Tensor g, long m)
    {
        UpdateFactors(l, abar, delta, m);
        if (_step % _inversePeriod == 0)
        {
            double pi = Pi(l), root = Math.Sqrt(_damping);
            l.AInverse?.Dispose();
            l.GInverse?.Dispose();
            l.AInverse = DampedInverse(l.A!, pi * root).DetachFromDisposeScope();
            l.GInverse = DampedInverse(l.G!, root / pi).DetachFromDisposeScope();
        }
        return l.GInverse!.mm(g).mm(l.AInverse!);
    }

    /// <summary>On the first step A and G are the batch's; then every factor period A ← βA + (1 − β) ĀᵀĀ/m, G likewise (one addmm each).</summary>
    private void UpdateFactors(Layer l, Tensor abar, Tensor delta, long m)
    {
        if (l.A is null)
        {
            l.A = abar.t().mm(abar).div_(m).DetachFromDisposeScope();
            l.G = delta.t().mm(delta).div_(m).DetachFromDisposeScope();
        }
        else if (_step % _factorPeriod == 0)
        {
            l.A.addmm_(abar.t(), abar, beta: (float)_decay, alpha: (float)((1 - _decay) / m));
            l.G!.addmm_(delta.t(), delta, beta: (float)_decay, alpha: (float)((1 - _decay) / m));
        }
    }

    /// <summary>π² = (tr A / in') / (tr G / out), 1 when not a finite positive number.</summary>
    private static double Pi(Layer l)
    {
        double meanA = l.A!.trace().ToDouble() / l.A.shape[0], meanG = l.G!.trace().ToDouble() / l.G.shape[0];
        double pi = Math.Sqrt(meanA / meanG);
        return double.IsFinite(pi) && pi > 0 ? pi : 1;
    }

    private Tensor Ekfac(Layer l, Tensor abar, Tensor delta, long m)
    {
        bool factors = l.A is null || _step % _factorPeriod == 0;
        UpdateFactors(l, abar, delta, m);
        bool basis = _step % _inversePeriod == 0;
        if (basis)
        {
            foreach (var t in new[] { l.QA, l.QG, l.EA, l.EG }) t?.Dispose();
            var (ea, qa) = linalg.eigh(l.A!);
            var (eg, qg) = linalg.eigh(l.G!);
            l.EA = ea.clamp_min_(0).DetachFromDisposeScope();
            l.QA = qa.DetachFromDisposeScope();
            l.EG = eg.clamp_min_(0).DetachFromDisposeScope();
            l.QG = qg.DetachFromDisposeScope();
            l.Pi = Pi(l);
        }
        var dq = delta.mm(l.QG!);                                             // m × out
        var aq = abar.mm(l.QA!);                                              // m × in'
        if (basis || factors)
        {
            var batch = dq.square().t().mm(aq.square()).div_(m);
            if (basis || l.S is null) { l.S?.Dispose(); l.S = batch.DetachFromDisposeScope(); }
            else l.S.mul_(_decay).add_(batch, alpha: 1 - _decay);
        }
        double root = Math.Sqrt(_damping);
        var denominator = l.S!.add(l.EG!.unsqueeze(1), alpha: l.Pi * root).add_(l.EA!.unsqueeze(0), alpha: root / l.Pi).add_(_damping);
        return l.QG!.mm(dq.t().mm(aq).div_(m).div_(denominator)).mm(l.QA!.t());
    }

    private static Tensor DampedInverse(Tensor factor, double shift)
    {
        var damped = factor.clone();
        damped.diagonal().add_(shift);
        return cholesky_inverse(linalg.cholesky(damped));
    }

    private Tensor Tengrad(Tensor abar, Tensor delta, Tensor g, long m)
    {
        if (NaturalGradient.Curvature.Auto.StructureCostModel.TengradPrefersParameterSpace(m, 1, abar.shape[1], delta.shape[1]))
        {
            var j = delta.unsqueeze(2).mul(abar.unsqueeze(1)).reshape(m, -1);        // m × p
            var system = j.t().mm(j).div_(m);
            system.diagonal().add_(_damping);
            return cholesky_solve(g.reshape(-1, 1), linalg.cholesky(system)).reshape(g.shape);
        }
        var k = abar.mm(abar.t()).mul_(delta.mm(delta.t()));
        k.diagonal().add_(_damping * m);                                      // λ/w with w = 1/m
        var jg = delta.mm(g).mul_(abar).sum(1, keepdim: true);               // J ḡ: m × 1
        var u = cholesky_solve(jg, linalg.cholesky(k));
        return g.sub_(delta.mul_(u).t().mm(abar)).div_(_damping);
    }

    public void Dispose()
    {
        foreach (var remove in _removers) remove();
        foreach (var l in _layers)
        {
            foreach (var t in new[] { l.A, l.G, l.AInverse, l.GInverse, l.Momentum, l.BiasMomentum, l.QA, l.QG, l.EA, l.EG, l.S }) t?.Dispose();
        }
    }
}

/// <summary>Checks that a lean step does the library's math: both take the same steps from the same weights.</summary>
internal static class LeanCheck
{
    /// <summary>
    /// max |θ_lib − θ_lean| / max |θ_lib − θ₀| after <paramref name="steps"/> steps of <c>NaturalGradientDescent</c> and of
    /// <see cref="LeanStep"/> on the same batch (float32 round-off only when the math agrees).
    /// </summary>
    public static double RelativeDifference(StepProblem problem, string method, int steps)
    {
        using var scope = NewDisposeScope();
        var configs = StepConfigs.Build(problem.Model, problem.Likelihood, new[] { method, method + "-lean" }, bothPaths: false);
        try
        {
            var library = configs.Single(c => c.Method == method && c.Path == "optimizer");
            var lean = configs.Single(c => c.Method == method && c.Path == "lean");
            var start = Parameters(library.Model!);
            for (int s = 0; s < steps; s++)
            {
                using var step = NewDisposeScope();
                library.Step(problem.X, problem.Y);
                lean.Step(problem.X, problem.Y);
            }
            var a = Parameters(library.Model!);
            var b = Parameters(lean.Model!);
            return (a - b).abs().max().ToDouble() / (a - start).abs().max().ToDouble();
        }
        finally
        {
            foreach (var c in configs) c.Dispose();
        }
    }

    private static Tensor Parameters(nn.Module<Tensor, Tensor> model)
    {
        using var _ = no_grad();
        return cat(model.parameters().Select(p => p.detach().flatten()).ToArray()).clone();
    }
}
