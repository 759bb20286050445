using NaturalGradient.Capture;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Reference;

/// <summary>Explicit, slow references: per-example backward loops and dense matrices built from them.</summary>
public static class BruteForce
{
    /// <summary>
    /// Per-example gradients of every covered layer's W̄ by a loop of single-example backward passes:
    /// returns, per layer, m × out × in'.
    /// </summary>
    public static List<Tensor> PerExampleGradients(Module<Tensor, Tensor> model, IReadOnlyList<ILayerAdapter> layers,
        Tensor x, Func<Tensor, Tensor, Tensor> perExampleLoss, Tensor y)
    {
        long m = x.shape[0];
        var perLayer = layers.Select(_ => new List<Tensor>()).ToList();
        for (long i = 0; i < m; i++)
        {
            model.zero_grad();
            var xi = x.narrow(0, i, 1);
            var yi = y.narrow(0, i, 1);
            perExampleLoss(model.call(xi), yi).sum().backward();
            for (int l = 0; l < layers.Count; l++) perLayer[l].Add(layers[l].GradientMatrix());
        }
        model.zero_grad();
        return perLayer.Select(g => stack(g.ToArray())).ToList();
    }

    /// <summary>Rows = examples, columns = all covered parameters (layers concatenated, each W̄ row-major).</summary>
    public static Tensor Jacobian(IReadOnlyList<Tensor> perLayer) =>
        cat(perLayer.Select(g => g.reshape(g.shape[0], -1)).ToArray(), 1);

    /// <summary>Dense (1/m) JᵀJ.</summary>
    public static Tensor EmpiricalFisher(Tensor jacobian) => jacobian.t().mm(jacobian).div(jacobian.shape[0]);

    /// <summary>Direct solve of (F + λI) x = g.</summary>
    public static Tensor DampedSolve(Tensor f, double damping, Tensor g) =>
        linalg.solve(f + damping * eye(f.shape[0], dtype: f.dtype), g);
}

/// <summary>The exact Fisher (GGN) built from explicit output Jacobians.</summary>
public static class ExactFisherReference
{
    /// <summary>F = (1/m) Σᵢ J_rᵢᵀ H_out(rᵢ) J_rᵢ, J_rᵢ (o × p) from one autograd pass per output unit; W̄ ordering per layer.</summary>
    public static Tensor Build(Module<Tensor, Tensor> model, IReadOnlyList<ILayerAdapter> layers, Tensor x,
        NaturalGradient.Likelihoods.ILikelihood likelihood)
    {
        long m = x.shape[0];
        Tensor? f = null;
        for (long i = 0; i < m; i++)
        {
            var r = model.call(x.narrow(0, i, 1));
            long o = r.shape[1];
            var rows = new List<Tensor>();
            for (long k = 0; k < o; k++)
            {
                model.zero_grad();
                r[0, k].backward(retain_graph: true);
                rows.Add(cat(layers.Select(l => l.GradientMatrix().flatten()).ToArray()));
            }
            var j = stack(rows.ToArray());                       // o × p
            var h = likelihood.OutputFisher(r.detach())[0];       // o × o
            var term = j.t().mm(h).mm(j);
            f = f is null ? term : f + term;
        }
        model.zero_grad();
        return f! / m;
    }
}
