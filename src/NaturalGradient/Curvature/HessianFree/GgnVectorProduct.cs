using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.HessianFree;

/// <summary>
/// Matrix-free products with the generalised Gauss-Newton matrix, which for the likelihoods here is the exact
/// Fisher: G v = (1/m) Σᵢ J_rᵢᵀ H_out(rᵢ) J_rᵢ v (seed 001 eq 14 and §7; shared/notes/curvature-conventions.md),
/// with r the metric batch's output (m × o, graph alive) and J_r = ∂r/∂θ over the given parameters θ.
/// Neither J nor G is ever formed.
/// </summary>
/// <remarks>
/// <para>J v uses the double-backward trick (TorchSharp has no forward-mode R-op): with a dummy u = 0 of r's shape,
/// w(u) = J_rᵀ u = grad(r, θ, u, create_graph) is linear in u, so grad(w, u, v) = (∂w/∂u)ᵀ v = J_r v. w(u) is
/// built once, in the constructor, and reused by every product; the Theano code of seed 001 appendix 8.3
/// (<c>Lop(out, params, Rop(out, params, v) / …)</c>) is the same computation.</para>
/// <para>Then H_out (J v) comes from <see cref="ILikelihood.MultiplyOutputFisher"/>, and Jᵀ(·) from one ordinary
/// backward grad(r, θ, ·). One product costs about two backward passes through the network (one through w's
/// double-backward graph, one through r's), and O(p + m o) memory besides the two retained graphs.</para>
/// </remarks>
public sealed class GgnVectorProduct : IDisposable
{
    private readonly Tensor _output;
    private readonly Tensor[] _parameters;
    private readonly ILikelihood _likelihood;
    private readonly long[] _sizes;
    private Tensor? _u;
    private Tensor[]? _w;

    /// <param name="output">The network output r (m × o) for the metric batch, with its autograd graph alive.</param>
    /// <param name="parameters">θ: the parameters the metric covers (each must influence r).</param>
    /// <param name="likelihood">The predictive distribution whose output Fisher H_out(r) defines G.</param>
    /// <param name="parameterNames">How error messages name each parameter; "input k" if null.</param>
    /// <exception cref="ArgumentException">r is not m × o with a graph, no parameters are given, or a parameter does
    /// not require grad or does not influence r (checked before the native call: <see cref="CheckedAutograd"/>).</exception>
    public GgnVectorProduct(Tensor output, IReadOnlyList<Tensor> parameters, ILikelihood likelihood, IReadOnlyList<string>? parameterNames = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(likelihood);
        if (output.dim() != 2)
            throw new ArgumentException($"the output must be m × o, got [{string.Join(", ", output.Sizes())}]", nameof(output));
        if (!output.requires_grad)
            throw new ArgumentException("the output has no autograd graph: compute it with gradients enabled and keep its graph for the step", nameof(output));
        if (parameters.Count == 0) throw new ArgumentException("at least one parameter is needed", nameof(parameters));
        _output = output;
        _parameters = parameters.ToArray();
        _likelihood = likelihood;
        _sizes = _parameters.Select(p => p.numel()).ToArray();
        Dimension = _sizes.Sum();

        using var grad = enable_grad();
        using var scope = NewDisposeScope();
        var u = zeros_like(output).requires_grad_(true);
        var w = CheckedAutograd.Grad(new[] { output }, _parameters, new[] { u }, retainGraph: true, createGraph: true, inputNames: parameterNames);
        _u = u.DetachFromDisposeScope();
        _w = w.Select(t => t.DetachFromDisposeScope()).ToArray();
    }

    /// <summary>p, the length of the flat vectors (parameters concatenated in the given order).</summary>
    public long Dimension { get; }

    /// <summary>m, the number of examples in the metric batch.</summary>
    public long BatchSize => _output.size(0);

    /// <summary>J_r v (m × o) for a flat v in parameter order.</summary>
    public Tensor JacobianVectorProduct(Tensor v)
    {
        CheckVector(v);
        using var grad = enable_grad();
        using var scope = NewDisposeScope();
        var pieces = Split(v.detach().to_type(_parameters[0].dtype).contiguous());
        var jv = torch.autograd.grad(W, new[] { U }, pieces, retain_graph: true)[0];
        return jv.detach().MoveToOuterDisposeScope();
    }

    /// <summary>J_rᵀ e (flat, parameter order) for e of r's shape (m × o).</summary>
    public Tensor TransposedJacobianProduct(Tensor e)
    {
        if (!e.Sizes().SequenceEqual(_output.Sizes()))
            throw new ArgumentException($"expected a tensor shaped like the output [{string.Join(", ", _output.Sizes())}], got [{string.Join(", ", e.Sizes())}]", nameof(e));
        using var grad = enable_grad();
        using var scope = NewDisposeScope();
        var g = torch.autograd.grad(new[] { _output }, _parameters, new[] { e.detach().to_type(_output.dtype) }, retain_graph: true);
        return cat(g.Select(t => t.flatten()).ToArray()).detach().MoveToOuterDisposeScope();
    }

    /// <summary>(G + λI) v = (1/m) J_rᵀ H_out J_r v + λ v for a flat v in parameter order.</summary>
    /// <param name="v">Flat vector of length <see cref="Dimension"/>.</param>
    /// <param name="damping">λ ≥ 0; default 0.</param>
    public Tensor Multiply(Tensor v, double damping = 0)
    {
        if (!(damping >= 0)) throw new ArgumentOutOfRangeException(nameof(damping), damping, "damping must be ≥ 0");
        CheckVector(v);
        using var scope = NewDisposeScope();
        var jv = JacobianVectorProduct(v);                                                   // J v: m × o
        var hjv = _likelihood.MultiplyOutputFisher(_output.detach(), jv).div((double)BatchSize); // (1/m) H_out J v
        var gv = TransposedJacobianProduct(hjv).to_type(v.dtype);                            // Jᵀ (·)
        if (damping > 0) gv.add_(v, damping);                                                // gv is fresh: in place
        return gv.MoveToOuterDisposeScope();
    }

    /// <summary>v ↦ (G + λI) v, for <see cref="Solvers.IIterativeSolver"/>.</summary>
    public Func<Tensor, Tensor> AsOperator(double damping = 0) => v => Multiply(v, damping);

    /// <summary>Releases the double-backward graph (the network's own graph belongs to the caller).</summary>
    public void Dispose()
    {
        if (_w is not null) foreach (var t in _w) t.Dispose();
        _u?.Dispose();
        _w = null;
        _u = null;
    }

    private Tensor U => _u ?? throw new ObjectDisposedException(nameof(GgnVectorProduct));
    private Tensor[] W => _w ?? throw new ObjectDisposedException(nameof(GgnVectorProduct));

    private Tensor[] Split(Tensor v)
    {
        var pieces = new Tensor[_parameters.Length];
        long offset = 0;
        for (int i = 0; i < pieces.Length; i++)
        {
            pieces[i] = v.narrow(0, offset, _sizes[i]).view(_parameters[i].Sizes());
            offset += _sizes[i];
        }
        return pieces;
    }

    private void CheckVector(Tensor v)
    {
        ArgumentNullException.ThrowIfNull(v);
        if (v.dim() != 1 || v.size(0) != Dimension)
            throw new ArgumentException($"expected a flat vector of length {Dimension}, got [{string.Join(", ", v.Sizes())}]", nameof(v));
    }
}
