using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Capture;
using NaturalGradient.Damping;
using NaturalGradient.Diagnostics;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Lean;

/// <summary>
/// The KL clip on η²Δᵀg (<see cref="KlClipForm.PreconditionedGradient"/>) where blocks give ⟨Δₗ, ḡₗ⟩ from their
/// mean-gradient route (K-FAC's Grams or eigenbasis, EKFAC's eigenbasis, TENGraD's Gram) and where they do not, over
/// the configurations around the route: damping modes and inverse methods, per-layer relative and Levenberg–Marquardt
/// damping, the empirical, Monte-Carlo and exact Fisher, a metric on another batch, layers beside or outside the route
/// (Conv2d, Embedding, LayerNorm, a plain parameter, tied weights, a layer called twice, a batch of one), factor and
/// eigenbasis schedules, a step skipped by the statistics guard, a resume from the state dict, and bfloat16 solves.
/// Reference: the eager path (a weight decay of 1e-300 fills every .grad by autograd and takes no route), stepped on
/// the same batches: the clip scale of every step and the weights after the steps agree to 1e-10 in float64 (float32:
/// 1e-4; bfloat16 solves, which both paths round by different products: 3e-2).
/// </summary>
[Collection("Torch")]
public class GradientKlClipReviewTests
{
    public enum Shape { Mlp, Small, Conv, Embedded, LayerNormed, PlainParameter, Tied, CalledTwice }

    private sealed class Net : Module<Tensor, Tensor>
    {
        private readonly Shape _shape;
        private readonly Linear fc0, fc1;
        private readonly Linear? mid, mid2;
        private readonly Conv2d? conv;
        private readonly Embedding? emb;
        private readonly LayerNorm? ln;
        private readonly Parameter? scale;

        public Net(Shape shape, ScalarType dtype) : base(nameof(Net))
        {
            manual_seed(41);
            _shape = shape;
            long width = shape == Shape.Small ? 5 : 40;
            fc0 = Linear(shape switch { Shape.Conv => 40, Shape.Embedded or Shape.Small => 6, _ => 30 }, width, dtype: dtype);
            fc1 = Linear(width, 3, dtype: dtype);
            switch (shape)
            {
                case Shape.Conv: conv = Conv2d(1, 2, 2, dtype: dtype); break;
                case Shape.Embedded: emb = Embedding(10, 6, dtype: dtype); break;
                case Shape.LayerNormed: ln = LayerNorm(new long[] { 40 }, dtype: dtype); break;
                case Shape.PlainParameter: scale = Parameter(randn(3, dtype: dtype).abs().add(0.5)); break;
                case Shape.Tied: mid = Linear(40, 40, dtype: dtype); mid2 = Linear(40, 40, dtype: dtype); break;
                case Shape.CalledTwice: mid = Linear(40, 40, dtype: dtype); break;
            }
            RegisterComponents();
            if (shape == Shape.Tied) mid2!.weight = mid!.weight!;
        }

        public override Tensor forward(Tensor x)
        {
            long m = x.size(0);
            var h = _shape switch
            {
                Shape.Conv => fc0.call(conv!.call(x.view(m, 1, 5, 6)).tanh().flatten(1)).tanh(),
                Shape.Embedded => fc0.call(emb!.call(x.view(m, 5, 6).abs().mul(3).floor().clamp(0, 9).to_type(ScalarType.Int64).select(2, 0))
                    .mean(new long[] { 1 })).tanh(),
                Shape.Small => fc0.call(x.narrow(1, 0, 6)).tanh(),
                _ => fc0.call(x).tanh(),
            };
            switch (_shape)
            {
                case Shape.LayerNormed: h = ln!.call(h); break;
                case Shape.Tied: h = mid2!.call(mid!.call(h).tanh()).tanh(); break;
                case Shape.CalledTwice: h = mid!.call(mid.call(h).tanh()).tanh(); break;
            }
            var o = fc1.call(h);
            return _shape == Shape.PlainParameter ? o * scale! : o;
        }
    }

    /// <summary>One configuration of the comparison.</summary>
    public sealed record Case(string Name)
    {
        public Shape Shape { get; init; } = Shape.Mlp;
        public CurvatureStructure Structure { get; init; } = CurvatureStructure.Kfac;
        public FisherKind Fisher { get; init; } = FisherKind.Empirical;
        public KfacOptions Kfac { get; init; } = new() { FactorUpdatePeriod = 1, InverseUpdatePeriod = 2 };
        public MetricForm Form { get; init; } = MetricForm.Uncentered;
        public LayerDamping LayerDamping { get; init; } = LayerDamping.Global;
        public DampingSchedule Schedule { get; init; } = DampingSchedule.Constant;
        public double Damping { get; init; } = 0.03;
        public double KlClip { get; init; } = 1e-4;
        public long BatchSize { get; init; } = 4;
        public int Steps { get; init; } = 3;
        public bool MetricBatch { get; init; }
        public int MonteCarloSamples { get; init; } = 1;
        public Func<string, bool>? IncludeLayer { get; init; }
        public bool Float32 { get; init; }
        /// <summary>Whether some block gives ⟨Δₗ, ḡₗ⟩ from its route (else every ḡₗ is formed).</summary>
        public bool Routed { get; init; } = true;
        /// <summary>The step whose inputs are scaled by 1e200 (the statistics guard skips it), or −1.</summary>
        public int OverflowStep { get; init; } = -1;
        /// <summary>The step before which network and optimiser are rebuilt from their state dicts, or −1.</summary>
        public int ResumeStep { get; init; } = -1;
        public override string ToString() => Name;
    }

    private static readonly KfacOptions EigenFactored = new() { FactorUpdatePeriod = 1, InverseUpdatePeriod = 2, InverseMethod = KfacInverseMethod.Eigen };
    private static readonly KfacOptions EigenExact = EigenFactored with { DampingMode = KfacDampingMode.Eigenbasis };

    private static readonly Case[] All =
    {
        new("kfac eigen-factored, relative, LM") { Kfac = EigenFactored, LayerDamping = LayerDamping.Relative, Schedule = DampingSchedule.LevenbergMarquardt },
        new("kfac eigenbasis, Monte-Carlo, relative") { Kfac = EigenExact, Fisher = FisherKind.MonteCarlo, LayerDamping = LayerDamping.Relative },
        new("kfac eigenbasis, Monte-Carlo, two samples") { Kfac = EigenExact, Fisher = FisherKind.MonteCarlo, MonteCarloSamples = 2 },
        new("ekfac factored, fc1 left to SGD") { Structure = CurvatureStructure.Ekfac, IncludeLayer = n => n != "fc1" },
        new("kfac cholesky, exact Fisher, LM") { Fisher = FisherKind.Exact, Schedule = DampingSchedule.LevenbergMarquardt },
        new("kfac eigen-factored, metric batch") { Routed = false, Kfac = EigenFactored, MetricBatch = true },
        new("kfac cholesky, batch of one") { BatchSize = 1 },
        new("kfac eigenbasis, conv") { Kfac = EigenExact, Shape = Shape.Conv },
        new("kfac cholesky, embedding, Monte-Carlo") { Routed = false, Shape = Shape.Embedded, Fisher = FisherKind.MonteCarlo },
        new("kfac eigen-factored, layer norm") { Kfac = EigenFactored, Shape = Shape.LayerNormed },
        new("kfac cholesky, plain parameter, relative") { Shape = Shape.PlainParameter, LayerDamping = LayerDamping.Relative },
        new("kfac eigenbasis, tied") { Routed = false, Kfac = EigenExact, Shape = Shape.Tied },
        new("kfac cholesky, called twice") { Routed = false, Shape = Shape.CalledTwice },
        new("kfac cholesky, factors every 2, skipped step, resume")
            { Kfac = new KfacOptions { FactorUpdatePeriod = 2, InverseUpdatePeriod = 3 }, Steps = 6, OverflowStep = 1, ResumeStep = 3 },
        new("kfac eigenbasis, skipped step, resume, LM")
            { Kfac = EigenExact, Steps = 5, OverflowStep = 2, ResumeStep = 3, Schedule = DampingSchedule.LevenbergMarquardt },
        // EKFAC's S is the metric's diagonal in the eigenbasis, which is not unique where eigenvalues repeat (the null space
        // of factors of rank below their size): a refresh after steps that differ in the last bits picks another basis. The
        // refreshes after the first are therefore checked on a layer whose factors have full rank (6 → 5 → 3 at m = 10,
        // where the update's projections give Δ), the steps between factor updates on the wide layer (rows route).
        new("ekfac factored, factors every 2, basis every 3") { Structure = CurvatureStructure.Ekfac, Kfac = new KfacOptions { FactorUpdatePeriod = 2, InverseUpdatePeriod = 3 }, Steps = 7, Shape = Shape.Small, BatchSize = 10 },
        new("ekfac eigenbasis, factors every 2, basis once") { Structure = CurvatureStructure.Ekfac, Kfac = EigenExact with { FactorUpdatePeriod = 2, InverseUpdatePeriod = 100 }, Steps = 5 },
        new("ekfac eigenbasis, relative, LM")
            { Structure = CurvatureStructure.Ekfac, Kfac = EigenExact, LayerDamping = LayerDamping.Relative, Schedule = DampingSchedule.LevenbergMarquardt },
        new("ekfac factored, Monte-Carlo") { Structure = CurvatureStructure.Ekfac, Fisher = FisherKind.MonteCarlo },
        new("ekfac factored, exact Fisher, conv") { Routed = false, Structure = CurvatureStructure.Ekfac, Fisher = FisherKind.Exact, Shape = Shape.Conv },
        new("ekfac factored, metric batch") { Routed = false, Structure = CurvatureStructure.Ekfac, MetricBatch = true },
        new("ekfac factored, called twice") { Routed = false, Structure = CurvatureStructure.Ekfac, Shape = Shape.CalledTwice },
        new("ekfac eigenbasis, embedding") { Structure = CurvatureStructure.Ekfac, Kfac = EigenExact, Shape = Shape.Embedded },
        new("tengrad, plain parameter, Monte-Carlo") { Routed = false, Structure = CurvatureStructure.Tengrad, Shape = Shape.PlainParameter, Fisher = FisherKind.MonteCarlo },
        new("ekfac factored, skipped step, resume")
            { Structure = CurvatureStructure.Ekfac, Kfac = new KfacOptions { FactorUpdatePeriod = 1, InverseUpdatePeriod = 2 }, Steps = 5, OverflowStep = 1, ResumeStep = 3, Shape = Shape.Small, BatchSize = 10 },
        new("tengrad, relative, LM") { Structure = CurvatureStructure.Tengrad, LayerDamping = LayerDamping.Relative, Schedule = DampingSchedule.LevenbergMarquardt },
        new("tengrad centred") { Routed = false, Structure = CurvatureStructure.Tengrad, Form = MetricForm.Centered },
        new("tengrad centred, Monte-Carlo") { Routed = false, Structure = CurvatureStructure.Tengrad, Form = MetricForm.Centered, Fisher = FisherKind.MonteCarlo },
        new("tengrad, tiny damping") { Structure = CurvatureStructure.Tengrad, Damping = 1e-13 },
        new("kfac cholesky, embedding") { Shape = Shape.Embedded },
        new("kfac cholesky, float32") { Float32 = true },
        new("kfac eigenbasis, float32, bfloat16 solve") { Routed = false, Float32 = true, Kfac = EigenExact with { InversePrecision = KfacInversePrecision.Bfloat16 } },
        new("kfac eigen-factored, float32, bfloat16 solve") { Float32 = true, Kfac = EigenFactored with { InversePrecision = KfacInversePrecision.Bfloat16 } },
        new("kfac cholesky, float32, bfloat16 solve, Monte-Carlo") { Float32 = true, Fisher = FisherKind.MonteCarlo, Kfac = new KfacOptions { FactorUpdatePeriod = 1, InverseUpdatePeriod = 2, InversePrecision = KfacInversePrecision.Bfloat16 } },
        new("ekfac factored, float32, bfloat16 solve") { Routed = false, Float32 = true, Structure = CurvatureStructure.Ekfac, Kfac = new KfacOptions { FactorUpdatePeriod = 1, InverseUpdatePeriod = 100, InversePrecision = KfacInversePrecision.Bfloat16 } },
        new("tengrad, float32") { Float32 = true, Structure = CurvatureStructure.Tengrad },
        new("tengrad, layer norm") { Structure = CurvatureStructure.Tengrad, Shape = Shape.LayerNormed },
        new("tengrad, skipped step, resume") { Structure = CurvatureStructure.Tengrad, Steps = 5, OverflowStep = 1, ResumeStep = 3 },
        new("tengrad, called twice") { Routed = false, Structure = CurvatureStructure.Tengrad, Shape = Shape.CalledTwice },
        new("auto, embedding") { Structure = CurvatureStructure.Auto, Shape = Shape.Embedded },
        new("auto, LM") { Structure = CurvatureStructure.Auto, Schedule = DampingSchedule.LevenbergMarquardt },
        new("auto, conv, Monte-Carlo") { Routed = false, Structure = CurvatureStructure.Auto, Shape = Shape.Conv, Fisher = FisherKind.MonteCarlo },
    };

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var c in All) data.Add(c.Name);
        return data;
    }

    private static NaturalGradientOptions Options(Case c, double weightDecay) => new()
    {
        LearningRate = 0.5, Momentum = 0.5, WeightDecay = weightDecay, KlClip = c.KlClip, KlClipForm = KlClipForm.PreconditionedGradient,
        DampingSchedule = c.Schedule,
        Preconditioner = new PreconditionerOptions
        {
            Structure = c.Structure, Fisher = c.Fisher, Damping = c.Damping, Form = c.Form, LayerDamping = c.LayerDamping, Kfac = c.Kfac, Seed = 5,
            MonteCarloSamples = c.MonteCarloSamples, IncludeLayer = c.IncludeLayer,
        },
    };

    private static (List<Tensor> Weights, List<StepReport> Reports) Run(Case c, double weightDecay)
    {
        var dtype = c.Float32 ? ScalarType.Float32 : ScalarType.Float64;
        var net = new Net(c.Shape, dtype);
        var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), Options(c, weightDecay));
        var reports = new List<StepReport>();
        try
        {
            for (int s = 0; s < c.Steps; s++)
            {
                if (s == c.ResumeStep)
                {
                    var resumed = new Net(c.Shape, dtype);
                    resumed.load_state_dict(net.state_dict());
                    var state = ngd.state_dict();
                    ngd.Dispose();
                    net = resumed;
                    ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), Options(c, weightDecay));
                    ngd.load_state_dict(state);
                }
                using var step = NewDisposeScope();
                manual_seed(60 + s);
                var x = randn(c.BatchSize, 30, dtype: dtype);
                var y = randint(0, 3, new long[] { c.BatchSize }, dtype: ScalarType.Int64);
                if (s == c.OverflowStep) x = x.mul(1e200);
                manual_seed(80 + s);
                var r = c.MetricBatch
                    ? ngd.Step(x, y, randn(c.BatchSize + 2, 30, dtype: dtype), randint(0, 3, new long[] { c.BatchSize + 2 }, dtype: ScalarType.Int64))
                    : ngd.Step(x, y);
                Assert.True(r.Applied == (s != c.OverflowStep), $"{c.Name}: step {s}: applied {r.Applied} ({r.Rejection})");
                reports.Add(r);
            }
            return (net.parameters().Select(p => p.detach().clone().DetachFromDisposeScope()).ToList(), reports);
        }
        finally { ngd.Dispose(); }
    }

    /// <summary>The clip scale of every step and the weights after the steps are the eager path's.</summary>
    [Theory]
    [MemberData(nameof(Names))]
    public void GradientKlClip_EqualsTheEagerPath(string name)
    {
        using var scope = NewDisposeScope();
        var c = All.Single(k => k.Name == name);
        var eager = Run(c, 1e-300);
        long kronecker = KroneckerFactors.MeanGradientInnerProducts, tengrad = TengradBlock.MeanGradientSolves;
        var routed = Run(c, 0);
        long fromRoutes = KroneckerFactors.MeanGradientInnerProducts - kronecker + TengradBlock.MeanGradientSolves - tengrad;
        Assert.True(c.Routed == fromRoutes > 0, $"{name}: {fromRoutes} inner products from the routes");
        Assert.Contains(eager.Reports, r => r.Applied && r.KlClipScale < 1);
        // float64: 1e-10; float32: its rounding; bfloat16 solves: theirs (both paths round, by different products).
        double tolerance = !c.Float32 ? 1e-10 : c.Kfac.InversePrecision == KfacInversePrecision.Bfloat16 && c.Structure != CurvatureStructure.Tengrad ? 3e-2 : 1e-4;
        for (int s = 0; s < eager.Reports.Count; s++)
        {
            double e = eager.Reports[s].KlClipScale, a = routed.Reports[s].KlClipScale;
            Assert.True(Math.Abs(e - a) <= tolerance * Math.Abs(e), $"{name}: clip scale of step {s}: eager {e:G17}, routed {a:G17}");
            Assert.Equal(eager.Reports[s].Damping, routed.Reports[s].Damping, 1e-10 * Math.Abs(eager.Reports[s].Damping));
        }
        for (int i = 0; i < eager.Weights.Count; i++)
            TensorAssert.Close(eager.Weights[i], routed.Weights[i], rtol: tolerance, label: $"{name}: parameter {i}");
    }
}
