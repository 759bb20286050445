using NaturalGradient.Capture;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Kfac;

/// <summary>
/// (a) For one example a Linear layer's metric block is exactly Kronecker: g = δāᵀ gives g gᵀ = δδᵀ ⊗ āāᵀ, and the
/// exact Fisher J_rᵀ H_out J_r = (Σ_c δ_c δ_cᵀ) ⊗ āāᵀ. K-FAC (and EKFAC) must reproduce both.
/// </summary>
[Collection("Torch")]
public class KfacBatchOfOneTests
{
    public static TheoryData<LikelihoodKind, string> Cases => new()
    {
        { LikelihoodKind.Gaussian, "kfac-eigen-factored" },
        { LikelihoodKind.Categorical, "kfac-eigen-factored" },
        { LikelihoodKind.Categorical, "ekfac" },
        { LikelihoodKind.Bernoulli, "ekfac" },
    };

    private static Tensor Targets(LikelihoodKind kind, long m, long outputs) => kind switch
    {
        LikelihoodKind.Categorical => KfacFixtures.Labels(m, outputs),
        LikelihoodKind.Bernoulli => TestModels.Inputs(m, outputs, seed: 2).gt(0).to_type(ScalarType.Float64),
        _ => TestModels.Inputs(m, outputs, seed: 2),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kfac_BatchOfOne_EmpiricalFisher_EqualsPerExampleGradientOuterProduct(LikelihoodKind kind, string configuration)
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 4, 5, 3 });
        var x = TestModels.Inputs(1, 4);
        var y = Targets(kind, 1, 3);
        var likelihood = Likelihood.Create(kind);
        var (layers, statistics) = KfacFixtures.Collect(model, x, y, likelihood);
        var perExample = BruteForce.PerExampleGradients(model, layers, x, likelihood.PerExampleLoss, y);

        for (int l = 0; l < layers.Count; l++)
        {
            using var block = KfacFixtures.CreateBlock(configuration, layers[l]);
            block.Update(statistics[l], 0);
            var g = perExample[l].reshape(-1, 1);
            TensorAssert.Close(g.mm(g.t()), block.ToDense(), rtol: 1e-10, label: $"layer {l}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Kfac_BatchOfOne_ExactFisher_EqualsJacobianTransposeOutputFisherJacobian(LikelihoodKind kind, string configuration)
    {
        using var scope = NewDisposeScope();
        var model = TestModels.Mlp(new[] { 4, 5, 3 });
        var x = TestModels.Inputs(1, 4);
        var likelihood = Likelihood.Create(kind);
        var (layers, statistics) = KfacFixtures.Collect(model, x, null, likelihood, FisherKind.Exact);

        for (int l = 0; l < layers.Count; l++)
        {
            using var block = KfacFixtures.CreateBlock(configuration, layers[l]);
            block.Update(statistics[l], 0);
            TensorAssert.Close(ExactFisherBlock(model, layers[l], x, likelihood), block.ToDense(), rtol: 1e-10, label: $"layer {l}");
        }
    }

    /// <summary>J_rᵀ H_out J_r for one example, J_r (o × p) from one backward pass per network output.</summary>
    private static Tensor ExactFisherBlock(nn.Module<Tensor, Tensor> model, ILayerAdapter layer, Tensor x, ILikelihood likelihood)
    {
        var output = model.call(x);
        var rows = new List<Tensor>();
        for (long c = 0; c < output.shape[1]; c++)
        {
            model.zero_grad();
            output[0, c].backward(retain_graph: true);
            rows.Add(layer.GradientMatrix().reshape(-1));
        }
        model.zero_grad();
        var jacobian = stack(rows.ToArray());                        // o × p
        var outputFisher = likelihood.OutputFisher(output.detach())[0];
        return jacobian.t().mm(outputFisher).mm(jacobian);
    }
}
