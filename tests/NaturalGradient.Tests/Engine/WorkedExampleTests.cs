using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Engine;

/// <summary>Seed 002's worked examples, computed through the library's own preconditioner.</summary>
[Collection("Torch")]
public class WorkedExampleTests
{
    private const double Tiny = 1e-12;

    /// <summary>A single Linear(1, k) without bias fed x = 1: its output is its weight vector.</summary>
    private static nn.Module<Tensor, Tensor> ParameterVector(double[] values)
    {
        var linear = nn.Linear(1, values.Length, hasBias: false, dtype: ScalarType.Float64);
        using (no_grad()) linear.weight!.copy_(tensor(values, ScalarType.Float64).reshape(values.Length, 1));
        return nn.Sequential(("theta", linear));
    }

    private static double[] NaturalStep(nn.Module<Tensor, Tensor> model, ILikelihood lik, Tensor target, FisherKind fisher)
    {
        var pre = new NaturalGradientPreconditioner(model, lik, new PreconditionerOptions
        { Structure = CurvatureStructure.Exact, Fisher = fisher, Damping = Tiny });
        model.zero_grad();
        pre.Backward(model.call(ones(1, 1, dtype: ScalarType.Float64)), target);
        pre.Precondition();
        return (-pre.GradientMatrices()[0]).flatten().data<double>().ToArray();
    }

    [Theory]
    [InlineData(FisherKind.Exact)]
    [InlineData(FisherKind.Empirical)]
    public void LogisticUnit_PlainStepIsHalf_NaturalStepIsTwo(FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        var model = ParameterVector(new[] { 0.0 });
        var y = ones(1, 1, dtype: ScalarType.Float64);
        var lik = new BernoulliLikelihood();
        model.zero_grad();
        lik.Loss(model.call(ones(1, 1, dtype: ScalarType.Float64)), y).backward();
        double plain = -model.parameters().First().grad!.item<double>();
        Assert.Equal(0.5, plain, 12);
        Assert.Equal(2.0, NaturalStep(model, lik, y, fisher)[0], 9);
    }

    [Fact]
    public void GaussianMean_NaturalGradientIsSigmaTimesGradient()
    {
        using var scope = NewDisposeScope();
        var sigma = tensor(new double[,] { { 2, 1 }, { 1, 2 } });
        var model = ParameterVector(new[] { 0.0, 0.0 });
        var pre = new NaturalGradientPreconditioner(model, new GaussianLikelihood(sigma), new PreconditionerOptions
        { Structure = CurvatureStructure.Exact, Fisher = FisherKind.Exact, Damping = Tiny });
        var y = tensor(new double[,] { { 1, 2 } });
        model.zero_grad();
        var mu = model.call(ones(1, 1, dtype: ScalarType.Float64));
        pre.CollectMetric(mu);                                   // metric I = Σ⁻¹ from the Gaussian N(μ, Σ)
        (mu - y).square().sum().mul(0.5).backward();             // the example's loss ½‖μ − y‖²: gradient (−1, −2)
        Assert.Equal(new[] { -1.0, -2.0 }, pre.GradientMatrices()[0].flatten().data<double>().ToArray());
        pre.Precondition();
        var natural = pre.GradientMatrices()[0].flatten().data<double>().ToArray();
        Assert.Equal(-4.0, natural[0], 9);
        Assert.Equal(-5.0, natural[1], 9);
    }

    /// <summary>Probability parameterisation θ → logit(θ) feeds the Bernoulli likelihood.</summary>
    private sealed class Logit : nn.Module<Tensor, Tensor>
    {
        public Logit() : base("logit") { }
        public override Tensor forward(Tensor q) => log(q) - log(1 - q);
    }

    [Fact]
    public void BernoulliNaturalStep_IsTheSameDistributionChangeInProbabilityAndLogOdds()
    {
        using var scope = NewDisposeScope();
        var y = ones(1, 1, dtype: ScalarType.Float64);
        var lik = new BernoulliLikelihood();
        var x = ones(1, 1, dtype: ScalarType.Float64);

        // Log-odds φ = 0 (the model output is φ itself).
        var logOdds = ParameterVector(new[] { 0.0 });
        double naturalPhi = NaturalStep(logOdds, lik, y, FisherKind.Exact)[0];
        logOdds.zero_grad();
        lik.Loss(logOdds.call(x), y).backward();
        double plainPhi = -logOdds.parameters().First().grad!.item<double>();

        // Probability θ = σ(0) = 0.5, mapped to logits by logit(θ).
        var probLinear = nn.Linear(1, 1, hasBias: false, dtype: ScalarType.Float64);
        using (no_grad()) probLinear.weight!.fill_(0.5);
        var probability = nn.Sequential(("theta", probLinear), ("logit", new Logit()));
        double naturalTheta = NaturalStep(probability, lik, y, FisherKind.Exact)[0];
        probability.zero_grad();
        lik.Loss(probability.call(x), y).backward();
        double plainTheta = -probLinear.weight!.grad!.item<double>();

        // dθ = σ'(φ) dφ = 0.25 dφ at φ = 0: the natural steps describe the same change of distribution.
        const double jacobian = 0.25;
        Assert.Equal(2.0, naturalPhi, 9);
        Assert.Equal(jacobian * naturalPhi, naturalTheta, 9);
        Assert.Equal(0.5, plainPhi, 12);
        Assert.Equal(2.0, plainTheta, 9);                       // the plain steps do not: 2.0 ≠ 0.25 · 0.5
        Assert.True(Math.Abs(plainTheta - jacobian * plainPhi) > 1.0);
    }
}
