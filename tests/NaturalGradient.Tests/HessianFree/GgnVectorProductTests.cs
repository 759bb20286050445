using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static NaturalGradient.Tests.HessianFree.GgnReference;

namespace NaturalGradient.Tests.HessianFree;

[Collection("Torch")]
public class GgnVectorProductTests
{
    public static TheoryData<LikelihoodKind> Kinds => new() { LikelihoodKind.Gaussian, LikelihoodKind.Bernoulli, LikelihoodKind.Categorical };

    [Theory, MemberData(nameof(Kinds))]
    public void Gv_EqualsExplicitJacobianProduct(LikelihoodKind kind)
    {
        using var _ = NewDisposeScope();
        var (_, _, r, _, theta) = Problem(new[] { 3, 5, 4 }, m: 6);
        var likelihood = Likelihood.Create(kind);
        using var ggn = new GgnVectorProduct(r, theta, likelihood);
        var j = OutputJacobians(r, theta);                                   // m × o × p
        var h = likelihood.OutputFisher(r.detach());
        manual_seed(7);
        for (int trial = 0; trial < 3; trial++)
        {
            var v = randn(ggn.Dimension, dtype: ScalarType.Float64);
            var jv = j.matmul(v);                                            // m × o
            var expected = j.transpose(1, 2).bmm(h.bmm(jv.unsqueeze(2))).squeeze(2).sum(dim: 0).div(r.shape[0]);
            TensorAssert.Close(jv, ggn.JacobianVectorProduct(v), rtol: 1e-12, label: "J v");
            TensorAssert.Close(expected, ggn.Multiply(v), rtol: 1e-12, label: $"G v ({kind})");
        }
    }

    [Theory, MemberData(nameof(Kinds))]
    public void DenseFromProducts_EqualsExplicitGgn_SymmetricPsd(LikelihoodKind kind)
    {
        using var _ = NewDisposeScope();
        var (_, _, r, _, theta) = Problem(new[] { 2, 4, 3 }, m: 5, seed: 3);
        var likelihood = Likelihood.Create(kind);
        using var ggn = new GgnVectorProduct(r, theta, likelihood);
        var dense = Dense(v => ggn.Multiply(v), ggn.Dimension);
        var expected = Ggn(r, theta, likelihood);
        TensorAssert.Close(expected, dense, rtol: 1e-12, label: "dense G");
        TensorAssert.Close(dense.t(), dense, rtol: 1e-12, label: "symmetry");
        Assert.True(linalg.eigvalsh(dense).min().item<double>() >= -1e-12);
    }

    [Fact]
    public void Damping_AddsLambdaV_AndRepeatedProductsAgree()
    {
        using var _ = NewDisposeScope();
        var (_, _, r, _, theta) = Problem(new[] { 3, 4, 2 }, m: 4);
        using var ggn = new GgnVectorProduct(r, theta, new CategoricalLikelihood());
        manual_seed(2);
        var v = randn(ggn.Dimension, dtype: ScalarType.Float64);
        var gv = ggn.Multiply(v);
        TensorAssert.Close(gv, ggn.Multiply(v), rtol: 0, label: "same input, same result (the graph survives)");
        TensorAssert.Close(gv + 0.3 * v, ggn.Multiply(v, 0.3), rtol: 1e-14, label: "(G + λI) v");
        TensorAssert.Close(gv + 0.3 * v, ggn.AsOperator(0.3)(v), rtol: 1e-14, label: "operator");
    }

    /// <remarks>
    /// H = G + (1/m) Σᵢ Σₖ (∂ℓᵢ/∂rₖ) ∇²_θ rᵢₖ. A ReLU net with a linear output is piecewise linear in each layer's
    /// parameters alone, so ∇²r vanishes inside every layer's block and H equals G block by block; the cross-layer
    /// blocks of ∇²r (r is bilinear in W₂ and W₁) do not vanish, so the full matrices differ unless the residual is 0.
    /// </remarks>
    [Fact]
    public void PiecewiseLinearNet_GaussianLikelihood_GgnEqualsHessianWithinEachLayer()
    {
        using var _ = NewDisposeScope();
        var (_, _, r, layers, theta) = Problem(new[] { 3, 6, 5, 2 }, m: 7, activation: "relu", seed: 5);
        manual_seed(11);
        var t = randn(r.shape, dtype: ScalarType.Float64);
        var likelihood = new GaussianLikelihood();
        var hessian = Hessian(likelihood.Loss(r, t), theta);
        using var ggn = new GgnVectorProduct(r, theta, likelihood);
        var g = Dense(v => ggn.Multiply(v), ggn.Dimension);
        long offset = 0;
        foreach (var layer in layers)
        {
            long n = layer.ParameterCount;
            TensorAssert.Close(hessian.narrow(0, offset, n).narrow(1, offset, n), g.narrow(0, offset, n).narrow(1, offset, n),
                rtol: 1e-12, label: $"GGN vs Hessian, block of {layer.Name} (ReLU, Gaussian)");
            offset += n;
        }
        Assert.True(TensorAssert.RelativeError(hessian, g) > 1e-3, "cross-layer blocks carry the residual term");
    }

    [Fact]
    public void LinearModel_GaussianLikelihood_GgnEqualsHessian()
    {
        using var _ = NewDisposeScope();
        var (_, _, r, _, theta) = Problem(new[] { 4, 3 }, m: 6, seed: 2);
        manual_seed(12);
        var t = randn(r.shape, dtype: ScalarType.Float64);
        var likelihood = new GaussianLikelihood(sigma: 0.5);
        var hessian = Hessian(likelihood.Loss(r, t), theta);
        using var ggn = new GgnVectorProduct(r, theta, likelihood);
        TensorAssert.Close(hessian, Dense(v => ggn.Multiply(v), ggn.Dimension), rtol: 1e-12, label: "GGN vs Hessian (linear model)");
    }

    [Theory, MemberData(nameof(Kinds))]
    public void ZeroResidual_GgnEqualsHessian(LikelihoodKind kind)
    {
        // Where ∂ℓ/∂r = 0 the residual term vanishes for any network: Gaussian targets t = r, and, for the
        // classification likelihoods, soft targets equal to the predicted probabilities (the NLL's gradient in r is π − t).
        using var _ = NewDisposeScope();
        var (_, _, r, _, theta) = Problem(new[] { 3, 5, 3 }, m: 5, activation: "tanh", seed: 8);
        var likelihood = Likelihood.Create(kind);
        var loss = kind switch
        {
            LikelihoodKind.Gaussian => likelihood.Loss(r, r.detach()),
            LikelihoodKind.Bernoulli => likelihood.Loss(r, sigmoid(r.detach())),
            _ => -(nn.functional.log_softmax(r, 1) * softmax(r.detach(), 1)).sum(1).mean(),
        };
        var hessian = Hessian(loss, theta);
        using var ggn = new GgnVectorProduct(r, theta, likelihood);
        TensorAssert.Close(hessian, Dense(v => ggn.Multiply(v), ggn.Dimension), rtol: 1e-10, label: $"GGN vs Hessian at zero residual ({kind})");
    }

    [Fact]
    public void TanhNet_GgnDiffersFromHessian()
    {
        // The control for the tests above: with a curved activation and a nonzero residual the Hessian has the extra term.
        using var _ = NewDisposeScope();
        var (_, _, r, _, theta) = Problem(new[] { 3, 6, 2 }, m: 7, activation: "tanh", seed: 5);
        manual_seed(11);
        var t = randn(r.shape, dtype: ScalarType.Float64);
        var likelihood = new GaussianLikelihood();
        var hessian = Hessian(likelihood.Loss(r, t), theta);
        using var ggn = new GgnVectorProduct(r, theta, likelihood);
        var g = Dense(v => ggn.Multiply(v), ggn.Dimension);
        Assert.True(TensorAssert.RelativeError(hessian.narrow(0, 0, 24).narrow(1, 0, 24), g.narrow(0, 0, 24).narrow(1, 0, 24)) > 1e-3);
    }

    [Fact]
    public void BadArguments_Throw()
    {
        using var _ = NewDisposeScope();
        var (_, _, r, _, theta) = Problem(new[] { 3, 4, 2 }, m: 4);
        var likelihood = new GaussianLikelihood();
        Assert.Throws<ArgumentException>(() => new GgnVectorProduct(r.detach(), theta, likelihood));
        Assert.Throws<ArgumentException>(() => new GgnVectorProduct(r.flatten(), theta, likelihood));
        Assert.Throws<ArgumentException>(() => new GgnVectorProduct(r, Array.Empty<Tensor>(), likelihood));
        using var ggn = new GgnVectorProduct(r, theta, likelihood);
        Assert.Throws<ArgumentException>(() => ggn.Multiply(zeros(ggn.Dimension - 1, dtype: ScalarType.Float64)));
        Assert.Throws<ArgumentException>(() => ggn.TransposedJacobianProduct(zeros(3, 3, dtype: ScalarType.Float64)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ggn.Multiply(zeros(ggn.Dimension, dtype: ScalarType.Float64), -1));
    }
}
