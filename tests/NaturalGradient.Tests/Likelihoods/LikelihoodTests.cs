using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Likelihoods;

/// <summary>Samplers have the right moments (fixed seed, statistical tolerance); output Fishers equal their closed forms.</summary>
[Collection("Torch")]
public class LikelihoodTests
{
    private const int Draws = 20_000;

    private static Tensor Logits(long m = 4, long o = 3)
    {
        manual_seed(5);
        return randn(m, o, dtype: ScalarType.Float64);
    }

    [Fact]
    public void Gaussian_SamplesHaveMeanROutputAndVarianceSigmaSquared()
    {
        using var scope = NewDisposeScope();
        var r = Logits();
        var lik = new GaussianLikelihood(sigma: 0.5);
        using var g = new Generator(1);
        var draws = lik.SampleTargets(r.repeat(Draws, 1), g).reshape(Draws, 4, 3);
        // Standard error of a mean of 20k draws with σ = 0.5 is 0.0035; of the variance about 0.0025.
        TensorAssert.Close(r, draws.mean(new long[] { 0 }), atol: 0.02, rtol: 0);
        TensorAssert.Close(full_like(r, 0.25), draws.var(0), atol: 0.015, rtol: 0);
    }

    [Fact]
    public void Gaussian_FullCovarianceSamplesHaveThatCovariance_AndFisherIsItsInverse()
    {
        using var scope = NewDisposeScope();
        var sigma = tensor(new double[,] { { 2, 1 }, { 1, 2 } });
        var lik = new GaussianLikelihood(sigma);
        var r = zeros(1, 2, dtype: ScalarType.Float64);
        using var g = new Generator(2);
        var draws = lik.SampleTargets(r.repeat(Draws, 1), g);
        var centred = draws - draws.mean(new long[] { 0 }, keepdim: true);
        TensorAssert.Close(sigma, centred.t().mm(centred) / (Draws - 1), atol: 0.06, rtol: 0);
        TensorAssert.Close(linalg.inv(sigma), lik.OutputFisher(r)[0], rtol: 1e-12);
    }

    [Fact]
    public void Bernoulli_SamplesHaveMeanSigmoidAndVariancePOneMinusP()
    {
        using var scope = NewDisposeScope();
        var r = Logits();
        var lik = new BernoulliLikelihood();
        using var g = new Generator(3);
        var draws = lik.SampleTargets(r.repeat(Draws, 1), g).reshape(Draws, 4, 3);
        var p = sigmoid(r);
        TensorAssert.Close(p, draws.mean(new long[] { 0 }), atol: 0.015, rtol: 0);
        TensorAssert.Close(p * (1 - p), draws.var(0), atol: 0.01, rtol: 0);
        Assert.True(draws.eq(0).logical_or(draws.eq(1)).all().item<bool>());
    }

    [Fact]
    public void Categorical_SampleFrequenciesMatchSoftmax()
    {
        using var scope = NewDisposeScope();
        var r = Logits(m: 2, o: 4);
        var lik = new CategoricalLikelihood();
        using var g = new Generator(4);
        var draws = lik.SampleTargets(r.repeat(Draws, 1), g).reshape(Draws, 2);   // Draws × m
        var frequencies = nn.functional.one_hot(draws, 4).to_type(ScalarType.Float64).mean(new long[] { 0 });
        TensorAssert.Close(softmax(r, 1), frequencies, atol: 0.015, rtol: 0);
    }

    [Fact]
    public void OutputFishers_EqualTheClosedForms_AndTheirFactors()
    {
        using var scope = NewDisposeScope();
        var r = Logits();
        var p = sigmoid(r);
        var pi = softmax(r, 1);
        var cases = new (ILikelihood Lik, Tensor Expected)[]
        {
            (new GaussianLikelihood(sigma: 2.0), eye(3, dtype: ScalarType.Float64).div(4).expand(4, 3, 3)),
            (new BernoulliLikelihood(), diag_embed(p * (1 - p))),
            (new CategoricalLikelihood(), diag_embed(pi) - pi.unsqueeze(2) * pi.unsqueeze(1)),
        };
        foreach (var (lik, expected) in cases)
        {
            TensorAssert.Close(expected, lik.OutputFisher(r), rtol: 1e-12, label: lik.Kind.ToString());
            var b = lik.OutputFisherFactor(r);
            TensorAssert.Close(expected, b.bmm(b.transpose(1, 2)), rtol: 1e-12, label: lik.Kind + " factor");
            var v = randn(4, 3, dtype: ScalarType.Float64);
            TensorAssert.Close(expected.bmm(v.unsqueeze(2)).squeeze(2), lik.MultiplyOutputFisher(r, v), rtol: 1e-12, label: lik.Kind + " product");
        }
    }

    [Fact]
    public void OutputFisher_IsTheExpectedOuterProductOfScoreInR()
    {
        // H_out = E_t[∇_r ℓ ∇_r ℓᵀ] under the model's own distribution, estimated by sampling.
        using var scope = NewDisposeScope();
        var r = Logits(m: 1, o: 3);
        foreach (ILikelihood lik in new ILikelihood[] { new GaussianLikelihood(), new BernoulliLikelihood(), new CategoricalLikelihood() })
        {
            using var g = new Generator(6);
            const int n = 20_000;
            var rr = r.repeat(n, 1).requires_grad_();          // n independent copies: one score per row
            var t = lik.SampleTargets(rr, g);
            var scores = autograd.grad(new[] { lik.PerExampleLoss(rr, t).sum() }, new[] { rr })[0];
            var sum = scores.t().mm(scores);
            TensorAssert.Close(lik.OutputFisher(r)[0], sum / n, atol: 0.03, rtol: 0, label: lik.Kind.ToString());
        }
    }

    [Fact]
    public void Losses_AreMeanNegativeLogLikelihoods()
    {
        using var scope = NewDisposeScope();
        var r = Logits(m: 2, o: 2);
        var t = tensor(new double[,] { { 0.5, -1 }, { 2, 0 } });
        double gauss = ((r - t).square().sum(1) * 0.5).mean().ToDouble();
        Assert.Equal(gauss, new GaussianLikelihood().Loss(r, t).ToDouble(), 12);
        var labels = tensor(new long[] { 1, 0 });
        double ce = -(nn.functional.log_softmax(r, 1).gather(1, labels.unsqueeze(1))).mean().ToDouble();
        Assert.Equal(ce, new CategoricalLikelihood().Loss(r, labels).ToDouble(), 12);
        var bits = tensor(new double[,] { { 1, 0 }, { 0, 1 } });
        var p = sigmoid(r);
        double bce = -(bits * log(p) + (1 - bits) * log(1 - p)).sum(1).mean().ToDouble();
        Assert.Equal(bce, new BernoulliLikelihood().Loss(r, bits).ToDouble(), 12);
    }
}
