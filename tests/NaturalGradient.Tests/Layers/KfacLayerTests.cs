using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// K-FAC and EKFAC on layers applied at several positions (Eschenhagen et al. 2023): the expand and reduce factors
/// follow their formulas, each is exact where the paper says it is, Embedding's A is diag(token counts)/m, and EKFAC's
/// scaling is the diagonal of the dense Fisher block in the Kronecker eigenbasis.
/// </summary>
[Collection("Torch")]
public class KfacLayerTests
{
    private static NaturalGradientPreconditioner Collect(LayerCase c, CurvatureStructure structure, FisherKind fisher, KfacWeightSharing sharing)
    {
        var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood, new PreconditionerOptions
        {
            Structure = structure, Fisher = fisher, Damping = 1e-2,
            Kfac = new KfacOptions { WeightSharing = sharing, InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Eigenbasis },
        });
        pc.Capture.Clear();
        pc.CollectMetric(c.Model.call(c.X), c.Y);
        return pc;
    }

    [Fact]
    public void Expand_IsExact_ForALinearLayerWithPerPositionOutputs()
    {
        // Exact Fisher of a Gaussian per-position output r_t = W ā_t: F = (1/m) Σᵢₜ I ⊗ āᵢₜāᵢₜᵀ = G ⊗ A with G = I.
        using var scope = NewDisposeScope();
        var c = new LayerCase("positionwise", new LayerModels.PositionwiseLinear(3, 2), LayerModels.Normal(20, 4, 5, 3),
            LayerModels.Normal(21, 4, 10), new GaussianLikelihood());
        using var pc = Collect(c, CurvatureStructure.Kfac, FisherKind.Exact, KfacWeightSharing.Expand);
        pc.Capture.Enabled = false;
        var reference = LayerBlockTests.ReferenceFisher(c, pc.Layers, FisherKind.Exact);
        var block = ((BlockDiagonalCurvature)pc.Curvature).Block("fc").ToDense();
        TensorAssert.Close(reference, block, rtol: 1e-10, label: "K-FAC expand");
    }

    [Fact]
    public void Reduce_IsExact_ForOneExampleWithPositionConstantInputs()
    {
        // m = 1 and ā_t = ā for all t: g = (Σₜ δₜ) āᵀ is rank one, and reduce's factors give exactly g gᵀ (empirical Fisher).
        using var scope = NewDisposeScope();
        var x = LayerModels.Normal(22, 1, 1, 3).expand(1, 4, 3).contiguous();
        var c = new LayerCase("pooled", new LayerModels.PooledLinear(3, 2), x, LayerModels.Normal(23, 1, 2), new GaussianLikelihood());
        using var pc = Collect(c, CurvatureStructure.Kfac, FisherKind.Empirical, KfacWeightSharing.Reduce);
        pc.Capture.Enabled = false;
        var reference = LayerBlockTests.ReferenceFisher(c, pc.Layers, FisherKind.Empirical);
        TensorAssert.Close(reference, ((BlockDiagonalCurvature)pc.Curvature).Block("fc").ToDense(), rtol: 1e-10, label: "K-FAC reduce");

        // Expand is not exact here: it treats the 4 positions as independent examples.
        using var expand = Collect(LayerCases.Create("sequence") with { Model = c.Model, X = c.X, Y = c.Y, Likelihood = c.Likelihood },
            CurvatureStructure.Kfac, FisherKind.Empirical, KfacWeightSharing.Expand);
        Assert.True(TensorAssert.RelativeError(reference, ((BlockDiagonalCurvature)expand.Curvature).Block("fc").ToDense()) > 1e-3);
    }

    [Theory]
    [InlineData(KfacWeightSharing.Expand)]
    [InlineData(KfacWeightSharing.Reduce)]
    public void Factors_FollowTheExpandAndReduceFormulas(KfacWeightSharing sharing)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("sequence");
        using var capture = new NaturalGradient.Capture.LayerCapture(c.Model);
        var output = c.Model.call(c.X);
        var stats = new FisherEstimator(c.Likelihood).Collect(capture, capture.Recorded(), output, c.Y);
        foreach (var s in stats)
        {
            using var block = new KfacBlock(s.Adapter, new KfacOptions { WeightSharing = sharing });
            block.Update(s, 0);
            var a = s.Activations; var d = s.OutputGradients[0];      // m × T × in', m × T × out
            long m = a.shape[0], t = a.shape[1];
            Tensor expectedA, expectedG;
            if (sharing == KfacWeightSharing.Expand)
            {
                expectedA = einsum("mti,mtj->ij", a, a) / m;
                expectedG = einsum("mti,mtj->ij", d, d) / (m * t);
            }
            else
            {
                var ar = a.mean(new long[] { 1 }); var dr = d.sum(new long[] { 1 });
                expectedA = ar.t().mm(ar) / m;
                expectedG = dr.t().mm(dr) / m;
            }
            TensorAssert.Close(expectedA, block.ActivationFactor, rtol: 1e-12, label: $"{sharing} A of {s.Adapter.Name}");
            TensorAssert.Close(expectedG, block.OutputGradientFactor, rtol: 1e-12, label: $"{sharing} G of {s.Adapter.Name}");
        }
    }

    [Fact]
    public void Embedding_ActivationFactorIsTokenCountsOverM_AndOneTokenOneExampleIsExact()
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create("embedding");
        using var pc = Collect(c, CurvatureStructure.Kfac, FisherKind.Empirical, KfacWeightSharing.Expand);
        var block = (KfacBlock)((BlockDiagonalCurvature)pc.Curvature).Block("emb");
        var counts = bincount(c.X.flatten(), minlength: 7).to_type(ScalarType.Float64) / c.X.shape[0];
        TensorAssert.Close(counts, block.ActivationFactor, rtol: 1e-14, label: "A = diag(counts)/m, kept as its diagonal");

        // One example with one token: the per-example gradient is δ e_kᵀ, and K-FAC equals the dense block.
        var single = c with { X = c.X.narrow(0, 0, 1).narrow(1, 0, 1), Y = c.Y.narrow(0, 0, 1) };
        using var pc1 = Collect(single, CurvatureStructure.Kfac, FisherKind.Exact, KfacWeightSharing.Expand);
        pc1.Capture.Enabled = false;
        var reference = LayerBlockTests.ReferenceFisher(single, pc1.Layers, FisherKind.Exact);
        long p = pc1.Layers[0].ParameterCount;
        TensorAssert.Close(reference.narrow(0, 0, p).narrow(1, 0, p), ((BlockDiagonalCurvature)pc1.Curvature).Block("emb").ToDense(),
            rtol: 1e-10, label: "embedding K-FAC, m = T = 1");
    }

    [Theory]
    [InlineData("sequence")]
    [InlineData("embedding")]
    [InlineData("siamese-residual")]
    [InlineData("layernorm")]
    public void Ekfac_ScalingIsTheDenseBlocksDiagonalInTheEigenbasis(string name)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var pc = Collect(c, CurvatureStructure.Ekfac, FisherKind.Exact, KfacWeightSharing.Expand);
        pc.Capture.Enabled = false;
        var reference = LayerBlockTests.ReferenceFisher(c, pc.Layers, FisherKind.Exact);
        var curvature = (BlockDiagonalCurvature)pc.Curvature;
        long offset = 0;
        foreach (var layer in pc.Layers)
        {
            long p = layer.ParameterCount;
            var block = reference.narrow(0, offset, p).narrow(1, offset, p);
            offset += p;
            var b = curvature.Block(layer.Name);
            if (b is not EkfacBlock ekfac)
            {
                // LayerNorm is not Kronecker-factored: EKFAC gives it the dense block.
                Assert.False(layer.IsKronecker);
                TensorAssert.Close(block, b.ToDense(), rtol: 1e-10, label: $"{name}: dense block of {layer.Name}");
                continue;
            }
            var q = kron(ekfac.OutputGradientBasis.contiguous(), ekfac.ActivationBasis.contiguous());
            var projected = q.t().mm(block).mm(q).diagonal();
            TensorAssert.Close(projected.reshape(layer.OutputDim, layer.InputDim), ekfac.Scaling, rtol: 1e-9, atol: 1e-12,
                label: $"{name}: EKFAC S of {layer.Name}");
        }
    }
}
