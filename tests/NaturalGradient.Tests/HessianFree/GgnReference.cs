using NaturalGradient.Capture;
using NaturalGradient.Likelihoods;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.HessianFree;

/// <summary>Explicit, slow references for the matrix-free Gauss-Newton products (parameter order: weight, bias per layer).</summary>
public static class GgnReference
{
    /// <summary>Adapters for the Linear layers of a Sequential built by <see cref="TestModels.Mlp"/>, in order.</summary>
    public static List<ILayerAdapter> Adapters(nn.Module<Tensor, Tensor> model) =>
        model.named_children().Where(c => c.module is Linear)
            .Select(c => (ILayerAdapter)new LinearAdapter(c.name, (Linear)c.module)).ToList();

    /// <summary>The per-example output Jacobians J_rᵢ (m × o × p), one autograd.grad per output unit.</summary>
    public static Tensor OutputJacobians(Tensor r, IList<Tensor> parameters)
    {
        long m = r.shape[0], o = r.shape[1];
        var rows = new List<Tensor>();
        for (long i = 0; i < m; i++)
            for (long k = 0; k < o; k++)
            {
                var g = torch.autograd.grad(new[] { r[i, k] }, parameters, retain_graph: true);
                rows.Add(cat(g.Select(t => t.flatten()).ToArray()));
            }
        return stack(rows.ToArray()).reshape(m, o, -1);
    }

    /// <summary>G = (1/m) Σᵢ J_rᵢᵀ H_out(rᵢ) J_rᵢ, dense p × p.</summary>
    public static Tensor Ggn(Tensor r, IList<Tensor> parameters, ILikelihood likelihood)
    {
        var j = OutputJacobians(r, parameters);                  // m × o × p
        var h = likelihood.OutputFisher(r.detach());             // m × o × o
        return j.transpose(1, 2).bmm(h).bmm(j).sum(dim: 0).div(r.shape[0]);
    }

    /// <summary>The Hessian of a scalar loss in θ, dense p × p, by double backward (one row per parameter).</summary>
    public static Tensor Hessian(Tensor loss, IList<Tensor> parameters)
    {
        var g = cat(torch.autograd.grad(new[] { loss }, parameters, retain_graph: true, create_graph: true)
            .Select(t => t.flatten()).ToArray());
        var rows = new List<Tensor>();
        for (long j = 0; j < g.shape[0]; j++)
        {
            var row = torch.autograd.grad(new[] { g[j] }, parameters, retain_graph: true);
            rows.Add(cat(row.Select(t => t.flatten()).ToArray()));
        }
        return stack(rows.ToArray());
    }

    /// <summary>The dense matrix of a linear operator on flat vectors of length n, column by column.</summary>
    public static Tensor Dense(Func<Tensor, Tensor> apply, long n, ScalarType dtype = ScalarType.Float64)
    {
        var eye = torch.eye(n, dtype: dtype);
        return stack(Enumerable.Range(0, (int)n).Select(j => apply(eye[j])).ToArray(), 1);
    }

    /// <summary>A small float64 MLP, its inputs, its output r (graph alive) and its covered parameters.</summary>
    public static (nn.Module<Tensor, Tensor> Model, Tensor X, Tensor R, List<ILayerAdapter> Layers, List<Tensor> Parameters)
        Problem(int[] sizes, int m, string activation = "tanh", long seed = 0)
    {
        var model = TestModels.Mlp(sizes, activation, bias: true, seed: seed);
        var x = TestModels.Inputs(m, sizes[0], seed + 1);
        var r = model.call(x);
        var layers = Adapters(model);
        return (model, x, r, layers, layers.SelectMany(l => l.Parameters).Cast<Tensor>().ToList());
    }
}
