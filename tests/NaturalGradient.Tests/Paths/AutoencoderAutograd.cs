using NaturalGradient.Training.Experiments.Paths;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Paths;

/// <summary>
/// The auto-encoder of seed 001 Figure 1 built in TorchSharp (float64) from the seed's formula, independently of the
/// closed forms: x̂ = w·sigmoid(w·x + b) − b, L = mean ½ (x − x̂)². Parameters may be reached through an invertible
/// linear map θ = A⁻¹ φ (A = identity: φ = θ = (b, w)).
/// </summary>
internal static class AutoencoderAutograd
{
    public sealed record Result(double Loss, double[] Gradient, double[,] Hessian, double[,] Metric, double[,] Covariance, double[,] ResidualHessian);

    private static Tensor Reconstruct(Tensor x, Tensor b, Tensor w) => w * sigmoid(w * x + b) - b;

    /// <summary>Everything at φ, with derivatives taken with respect to φ (θ = <paramref name="aInverse"/> φ).</summary>
    public static Result At(IReadOnlyList<double> data, double[] phi, double[,]? aInverse = null)
    {
        using var scope = NewDisposeScope();
        var ainv = tensor(aInverse ?? new double[,] { { 1, 0 }, { 0, 1 } }, ScalarType.Float64);
        var x = tensor(data.ToArray(), ScalarType.Float64);
        int n = data.Count;

        // Loss, gradient and (double backward) Hessian with respect to the 2-vector φ.
        var p = tensor(phi, ScalarType.Float64).requires_grad_();
        var theta = ainv.matmul(p);
        var xhat = Reconstruct(x, theta[0], theta[1]);
        var r = x - xhat;
        var loss = (0.5 * r * r).mean();
        var grad = autograd.grad(new[] { loss }, new[] { p }, retain_graph: true, create_graph: true)[0];
        var hess = new double[2, 2];
        for (int k = 0; k < 2; k++)
        {
            var row = autograd.grad(new[] { grad[k] }, new[] { p }, retain_graph: true)[0].data<double>().ToArray();
            hess[k, 0] = row[0];
            hess[k, 1] = row[1];
        }

        // The residual part of the Hessian, ∇² (1/n) Σ stop_grad(rᵢ) x̂ᵢ, so that H = G − that.
        var rFixed = r.detach();
        var weighted = (rFixed * xhat).mean();
        var wgrad = autograd.grad(new[] { weighted }, new[] { p }, retain_graph: true, create_graph: true)[0];
        var residual = new double[2, 2];
        for (int k = 0; k < 2; k++)
        {
            var row = autograd.grad(new[] { wgrad[k] }, new[] { p }, retain_graph: true)[0].data<double>().ToArray();
            residual[k, 0] = row[0];
            residual[k, 1] = row[1];
        }

        // Per-example Jacobians Jᵢ = ∂x̂ᵢ/∂φ and gradients gᵢ = ∂ℓᵢ/∂φ: every example gets its own copy of φ.
        var rows = tensor(phi, ScalarType.Float64).unsqueeze(0).repeat(n, 1).requires_grad_();
        var thetas = rows.matmul(ainv.t());
        var xhatEach = Reconstruct(x, thetas[.., 0], thetas[.., 1]);
        var jac = autograd.grad(new[] { xhatEach.sum() }, new[] { rows }, retain_graph: true)[0];     // n × 2
        var rEach = x - xhatEach;
        var per = autograd.grad(new[] { (0.5 * rEach * rEach).sum() }, new[] { rows })[0];           // n × 2
        var metric = jac.t().matmul(jac) / n;
        var centred = per - per.mean(new long[] { 0 }, keepdim: true);
        var cov = centred.t().matmul(centred) / n;

        return new Result(loss.item<double>(), grad.detach().data<double>().ToArray(), hess, ToArray(metric), ToArray(cov), residual);
    }

    public static double[,] ToArray(Tensor m)
    {
        var v = m.detach().data<double>().ToArray();
        return new double[,] { { v[0], v[1] }, { v[2], v[3] } };
    }

    public static double[,] ToArray(Sym2 m) => new double[,] { { m.BB, m.BW }, { m.BW, m.WW } };
}
