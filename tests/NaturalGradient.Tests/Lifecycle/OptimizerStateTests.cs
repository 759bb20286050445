using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Damping;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Lifecycle;

/// <summary>
/// state_dict()/load_state_dict() of the natural-gradient optimiser and preconditioner: a user loop interrupted
/// after k steps, saved to bytes, and resumed in a fresh model/optimiser takes exactly the steps of the loop that
/// never stopped (bitwise equal weights), for every structure that keeps state across steps.
/// </summary>
[Collection("Torch")]
public class OptimizerStateTests
{
    private const int Steps = 9, StopAfter = 4, Batch = 8;

    private static (Tensor X, Tensor Y) Data()
    {
        var teacher = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 50);
        var x = TestModels.Inputs(40, 4, seed: 51);
        using var _ = no_grad();
        return (x, teacher.call(x).argmax(1));
    }

    private static NaturalGradientOptions Options(CurvatureStructure structure, KfacInverseMethod inverse,
        KfacInversePrecision precision = KfacInversePrecision.Model) => new()
    {
        LearningRate = 0.3,
        Momentum = 0.9,
        DampingSchedule = DampingSchedule.LevenbergMarquardt,
        Preconditioner = new PreconditionerOptions
        {
            Structure = structure,
            Fisher = structure == CurvatureStructure.Kbfgs ? FisherKind.Empirical : FisherKind.MonteCarlo,   // K-BFGS's secant pairs need loss gradients
            Damping = 1e-2,
            Seed = 7,
            Kfac = new KfacOptions { FactorDecay = 0.9, InverseUpdatePeriod = 3, FactorUpdatePeriod = 1, InverseMethod = inverse, InversePrecision = precision },
        },
    };

    /// <summary>Steps [from, to) of the fixed batch schedule.</summary>
    private static void Run(NaturalGradientDescent ngd, Tensor x, Tensor y, int from, int to)
    {
        for (int s = from; s < to; s++)
        {
            using var scope = NewDisposeScope();
            long start = (s * Batch) % x.shape[0];
            ngd.Step(x.narrow(0, start, Batch), y.narrow(0, start, Batch));
        }
    }

    private static byte[] Save(NaturalGradientStateDict state) => ResumeCheck.Save(state);

    private static NaturalGradientStateDict Load(byte[] bytes) => ResumeCheck.Load(bytes);

    [Theory]
    [InlineData(CurvatureStructure.Kfac, KfacInverseMethod.Eigen)]
    [InlineData(CurvatureStructure.Kfac, KfacInverseMethod.Cholesky)]
    [InlineData(CurvatureStructure.Ekfac, KfacInverseMethod.Eigen)]
    [InlineData(CurvatureStructure.HessianFree, KfacInverseMethod.Eigen)]
    [InlineData(CurvatureStructure.Tengrad, KfacInverseMethod.Eigen)]
    [InlineData(CurvatureStructure.Exact, KfacInverseMethod.Eigen)]
    [InlineData(CurvatureStructure.Kbfgs, KfacInverseMethod.Eigen)]
    [InlineData(CurvatureStructure.Auto, KfacInverseMethod.Cholesky)]
    [InlineData(CurvatureStructure.Auto, KfacInverseMethod.Cholesky, 64)]
    [InlineData(CurvatureStructure.Kfac, KfacInverseMethod.Cholesky, 6, KfacInversePrecision.Bfloat16)]
    [InlineData(CurvatureStructure.Kfac, KfacInverseMethod.Eigen, 6, KfacInversePrecision.Bfloat16)]
    [InlineData(CurvatureStructure.Ekfac, KfacInverseMethod.Eigen, 6, KfacInversePrecision.Bfloat16)]
    public void Interrupted_and_resumed_loop_equals_the_uninterrupted_one(CurvatureStructure structure, KfacInverseMethod inverse, int hidden = 6,
        KfacInversePrecision precision = KfacInversePrecision.Model)
    {
        var (x, y) = Data();
        var lik = new CategoricalLikelihood();
        var widths = new[] { 4, hidden, 3 };
        // The bfloat16 solve applies to float32 models: its copies of the inverses are rebuilt from the restored ones.
        bool single = precision == KfacInversePrecision.Bfloat16;
        if (single) x = x.to_type(ScalarType.Float32);
        NaturalGradientOptions Options(CurvatureStructure s, KfacInverseMethod i) => OptimizerStateTests.Options(s, i, precision);
        Module<Tensor, Tensor> Mlp(int[] w, long seed) { var m = TestModels.Mlp(w, seed: seed); return single ? m.to(ScalarType.Float32) : m; }

        var straight = Mlp(widths, seed: 3);
        string[]? decisions = null;
        using (var ngd = new NaturalGradientDescent(straight, lik, Options(structure, inverse)))
        {
            Run(ngd, x, y, 0, Steps);
            decisions = (ngd.Preconditioner.Curvature as NaturalGradient.Curvature.Auto.AutoCurvature)?.Choices.Select(c => c.ToString()).ToArray();
        }
        // auto: the narrow net's layers get K-FAC (whose state is restored), the wide one's TENGraD (rebuilt each step).
        if (decisions is not null) Assert.Contains(decisions, d => d.Contains(hidden == 6 ? ": kfac" : ": tengrad"));

        var first = Mlp(widths, seed: 3);
        byte[] optimizerBytes;
        var weights = new Dictionary<string, Tensor>();
        using (var ngd = new NaturalGradientDescent(first, lik, Options(structure, inverse)))
        {
            Run(ngd, x, y, 0, StopAfter);
            using var state = ngd.state_dict();
            optimizerBytes = Save(state);
            foreach (var (name, p) in first.named_parameters()) weights[name] = p.detach().clone();
        }

        var resumed = Mlp(widths, seed: 99); // other initial weights: all must come from the state
        using (no_grad())
            foreach (var (name, p) in resumed.named_parameters()) p.copy_(weights[name]);
        using (var ngd = new NaturalGradientDescent(resumed, lik, Options(structure, inverse)))
        {
            using (var state = Load(optimizerBytes)) ngd.load_state_dict(state);
            if (ngd.Preconditioner.Curvature is NaturalGradient.Curvature.Auto.AutoCurvature auto)
                Assert.Equal(decisions, auto.Choices.Select(c => c.ToString()));   // the decisions come back with their blocks
            Run(ngd, x, y, StopAfter, Steps);
        }

        var expected = straight.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in resumed.named_parameters())
            Assert.True(p.eq(expected[name]).all().item<bool>(), $"{structure}: parameter {name} differs after resume");
    }

    [Fact]
    public void Preconditioner_with_a_torch_optimiser_resumes_exactly()
    {
        var (x, y) = Data();
        var lik = new CategoricalLikelihood();
        var options = Options(CurvatureStructure.Kfac, KfacInverseMethod.Eigen).Preconditioner;

        void Loop(Module<Tensor, Tensor> model, NaturalGradientPreconditioner p, optim.Optimizer opt, int from, int to)
        {
            for (int s = from; s < to; s++)
            {
                using var scope = NewDisposeScope();
                long start = (s * Batch) % x.shape[0];
                opt.zero_grad();
                p.Backward(model.call(x.narrow(0, start, Batch)), y.narrow(0, start, Batch));
                p.Precondition();
                opt.step();
            }
        }

        var straight = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 3);
        using (var p = new NaturalGradientPreconditioner(straight, lik, options))
        using (var opt = optim.Adam(straight.parameters(), 0.05))
            Loop(straight, p, opt, 0, Steps);

        var first = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 3);
        byte[] preconditionerBytes, adamBytes;
        using (var p = new NaturalGradientPreconditioner(first, lik, options))
        using (var opt = optim.Adam(first.parameters(), 0.05))
        {
            Loop(first, p, opt, 0, StopAfter);
            using var state = p.state_dict();
            preconditionerBytes = Save(state);
            using var stream = new MemoryStream();
            using (var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true)) ((TorchSharp.Modules.OptimizerHelper)opt).save_state_dict(w);
            adamBytes = stream.ToArray();
        }

        var resumed = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 99);
        using (no_grad())
            foreach (var ((_, to), (_, from)) in resumed.named_parameters().Zip(first.named_parameters())) to.copy_(from);
        using (var p = new NaturalGradientPreconditioner(resumed, lik, options))
        using (var opt = optim.Adam(resumed.parameters(), 0.05))
        {
            using (var state = Load(preconditionerBytes)) p.load_state_dict(state);
            using (var r = new BinaryReader(new MemoryStream(adamBytes))) ((TorchSharp.Modules.OptimizerHelper)opt).load_state_dict(r);
            Loop(resumed, p, opt, StopAfter, Steps);
        }

        foreach (var ((name, a), (_, b)) in resumed.named_parameters().Zip(straight.named_parameters()))
            Assert.True(a.eq(b).all().item<bool>(), $"parameter {name} differs after resume");
    }

    [Fact]
    public void A_state_of_another_structure_is_refused_and_nothing_changes()
    {
        var (x, y) = Data();
        var lik = new CategoricalLikelihood();
        var model = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 3);
        using var kfac = new NaturalGradientDescent(model, lik, Options(CurvatureStructure.Kfac, KfacInverseMethod.Eigen));
        Run(kfac, x, y, 0, 2);
        using var state = kfac.state_dict();

        var other = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 3);
        using var ekfac = new NaturalGradientDescent(other, lik, Options(CurvatureStructure.Ekfac, KfacInverseMethod.Eigen));
        var e = Assert.Throws<InvalidDataException>(() => ekfac.load_state_dict(state));
        Assert.Equal("the state is for curvature structure 'Kfac', but this preconditioner has 'Ekfac'", e.Message);
        Assert.Equal(0, ekfac.Preconditioner.StepCount);

        var wider = TestModels.Mlp(new[] { 4, 7, 3 }, seed: 3);
        using var kfac2 = new NaturalGradientDescent(wider, lik, Options(CurvatureStructure.Kfac, KfacInverseMethod.Eigen));
        e = Assert.Throws<InvalidDataException>(() => kfac2.load_state_dict(state));
        Assert.Equal("the state is for covered layers 'fc0:6x5,fc1:3x7', but this preconditioner has 'fc0:7x5,fc1:3x8'", e.Message);
    }

    [Fact]
    public void A_kbfgs_state_with_another_kind_of_inverse_is_refused_and_nothing_changes()
    {
        var (x, y) = Data();
        var lik = new CategoricalLikelihood();
        var dense = Options(CurvatureStructure.Kbfgs, KfacInverseMethod.Eigen);
        using var first = new NaturalGradientDescent(TestModels.Mlp(new[] { 4, 6, 3 }, seed: 3), lik, dense);
        Run(first, x, y, 0, 3);
        using var state = first.state_dict();

        var limited = dense with { Preconditioner = dense.Preconditioner with { Kbfgs = new NaturalGradient.Curvature.Kbfgs.KbfgsOptions { Memory = 4 } } };
        var model = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 3);
        using var second = new NaturalGradientDescent(model, lik, limited);
        Run(second, x, y, 0, 1);
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        var e = Assert.Throws<InvalidDataException>(() => second.load_state_dict(state));
        Assert.Equal("the state's K-BFGS inverse for layer 'fc0' is dense, but this block keeps an L-BFGS one (Memory = 4)", e.Message);
        Assert.Equal(1, second.Preconditioner.StepCount);
        foreach (var (b, p) in before.Zip(model.parameters())) Assert.True(b.eq(p).all().item<bool>());
        Run(second, x, y, 1, 2);   // still usable: its own blocks were kept
        Assert.Equal(2, second.Preconditioner.StepCount);
    }

    [Fact]
    public void A_truncated_state_is_refused_with_one_line()
    {
        var (x, y) = Data();
        var model = TestModels.Mlp(new[] { 4, 6, 3 }, seed: 3);
        using var ngd = new NaturalGradientDescent(model, new CategoricalLikelihood(), Options(CurvatureStructure.Kfac, KfacInverseMethod.Eigen));
        Run(ngd, x, y, 0, 2);
        using var state = ngd.state_dict();
        var bytes = Save(state);
        foreach (int keep in new[] { 0, 10, bytes.Length / 2, bytes.Length - 1 })
        {
            var e = Assert.Throws<InvalidDataException>(() => Load(bytes[..keep]).Dispose());
            Assert.DoesNotContain("\n", e.Message);
        }
    }
}
