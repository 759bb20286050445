using NaturalGradient.Capture;
using NaturalGradient.Curvature;
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
/// <see cref="NaturalGradientDescent.Step"/>'s gradients where its backward stops at the layer outputs, over model shapes
/// that put a layer on either side of the "gradient from statistics" line (frozen weight, no bias, sequences, Conv2d,
/// LayerNorm, BatchNorm in eval mode, Embedding, tied weights, an output used twice, a layer outside the loss's graph,
/// dropout, a plain parameter, a layer on a batch of one): the gradient read inside the step is autograd's on a twin
/// network, and steps with Levenberg–Marquardt damping, momentum and the detailed report give the weights and the
/// report of the eager path (a weight decay of 1e-300, which fills every .grad and takes no mean-gradient route).
/// </summary>
[Collection("Torch")]
public class StatisticsGradientReviewTests
{
    public enum Shape
    {
        FrozenWeight, NoBias, Sequence, Conv, LayerNormed, BatchNormEval, Embedded, TiedLinears,
        OutputUsedTwice, UnusedBranch, Dropout, PlainParameter, PlainUpstream, BatchOfOne,
    }

    private const ScalarType F64 = ScalarType.Float64;

    /// <summary>x (m × 12, float64) → … → 3 logits, in the given shape.</summary>
    private sealed class Net : Module<Tensor, Tensor>
    {
        private readonly Shape _shape;
        private readonly Linear fc0, fc2;
        private readonly Linear? fc1, aux, pos;
        private readonly Conv2d? conv;
        private readonly LayerNorm? ln;
        private readonly BatchNorm1d? bn;
        private readonly Embedding? emb;
        private readonly Parameter? scale;
        private readonly Tensor? constant;

        public Net(Shape shape) : base(nameof(Net))
        {
            manual_seed(21);
            _shape = shape;
            fc0 = shape switch
            {
                Shape.NoBias => Linear(12, 8, hasBias: false, dtype: F64),
                Shape.Sequence => Linear(4, 8, dtype: F64),
                Shape.Conv => Linear(12, 8, dtype: F64),
                Shape.Embedded => Linear(4, 8, dtype: F64),
                _ => Linear(12, 8, dtype: F64),
            };
            fc2 = Linear(8, 3, dtype: F64);
            switch (shape)
            {
                case Shape.Conv: conv = Conv2d(1, 2, 2, dtype: F64); fc0 = Linear(12, 8, dtype: F64); break;
                case Shape.LayerNormed: ln = LayerNorm(new long[] { 8 }, dtype: F64); break;
                case Shape.BatchNormEval: bn = BatchNorm1d(8, dtype: F64); break;
                case Shape.Embedded: emb = Embedding(10, 4, dtype: F64); break;
                case Shape.TiedLinears: fc1 = Linear(8, 8, dtype: F64); aux = Linear(8, 8, dtype: F64); break;
                case Shape.OutputUsedTwice: fc1 = Linear(8, 3, dtype: F64); break;
                case Shape.UnusedBranch: aux = Linear(8, 5, dtype: F64); break;
                case Shape.PlainParameter: scale = Parameter(randn(3, dtype: F64).abs().add(0.5)); break;
                case Shape.PlainUpstream: scale = Parameter(randn(12, dtype: F64).abs().add(0.5)); break;
                case Shape.BatchOfOne: pos = Linear(4, 8, dtype: F64); constant = randn(1, 4, dtype: F64); break;
            }
            RegisterComponents();
            if (shape == Shape.FrozenWeight) fc0.weight!.requires_grad = false;
            if (shape == Shape.TiedLinears) aux!.weight = fc1!.weight!;
            if (bn is not null)
            {
                using var _ = no_grad();
                bn.running_mean!.copy_(randn(8, dtype: F64).mul(0.1));
                bn.running_var!.copy_(rand(8, dtype: F64).add(0.5));
                bn.weight!.copy_(rand(8, dtype: F64).add(0.5));
                bn.bias!.copy_(randn(8, dtype: F64).mul(0.1));
                bn.eval();
            }
        }

        public override Tensor forward(Tensor x)
        {
            long m = x.size(0);
            Tensor h = _shape switch
            {
                Shape.Sequence => fc0.call(x.view(m, 3, 4)).tanh().mean(new long[] { 1 }),
                Shape.Conv => fc0.call(conv!.call(x.view(m, 1, 3, 4)).tanh().flatten(1)).tanh(),
                Shape.Embedded => fc0.call(emb!.call(x.abs().mul(3).floor().clamp(0, 9).to_type(ScalarType.Int64)).mean(new long[] { 1 })).tanh(),
                Shape.PlainUpstream => fc0.call(x * scale!).tanh(),
                _ => fc0.call(x).tanh(),
            };
            switch (_shape)
            {
                case Shape.LayerNormed: h = ln!.call(h); break;
                case Shape.BatchNormEval: h = bn!.call(h); break;
                case Shape.TiedLinears: h = aux!.call(fc1!.call(h).tanh()).tanh(); break;
                case Shape.UnusedBranch: aux!.call(h); break;   // recorded, outside the loss's graph
                case Shape.Dropout: h = functional.dropout(h, 0.3, training: true); break;
                case Shape.BatchOfOne: h = h + pos!.call(constant!).tanh(); break;
            }
            var o = fc2.call(h);
            return _shape switch
            {
                Shape.OutputUsedTwice => o + 0.5 * o * fc1!.call(h),
                Shape.PlainParameter => o * scale!,
                _ => o,
            };
        }
    }

    private static (Tensor X, Tensor Y) Batch()
    {
        manual_seed(22);
        return (randn(6, 12, dtype: F64), randint(0, 3, new long[] { 6 }, dtype: ScalarType.Int64));
    }

    /// <summary>Autograd's gradients of the mean loss on a twin network, by parameter name (dropout's mask drawn after seed 23).</summary>
    private static Dictionary<string, Tensor> TwinGradients(Shape shape)
    {
        var twin = new Net(shape);
        var (x, y) = Batch();
        manual_seed(23);
        new CategoricalLikelihood().Loss(twin.call(x), y).backward();
        return twin.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
    }

    /// <summary>
    /// Every shape with K-FAC, EKFAC, TENGraD, Auto, the diagonal (which reads g), K-BFGS (empirical: its secant pass) and
    /// Hessian-free (eager), the empirical and Monte-Carlo Fisher, and the exact Fisher for the Kronecker routes; less the
    /// combinations the preconditioner refuses before any step (the exact Fisher, or a per-example structure, on a layer
    /// that saw one row; K-BFGS on elementwise layers; Hessian-free with a parameter outside the output's graph).
    /// </summary>
    public static TheoryData<Shape, CurvatureStructure, FisherKind> Cases()
    {
        var data = new TheoryData<Shape, CurvatureStructure, FisherKind>();
        var structures = new[] { CurvatureStructure.Kfac, CurvatureStructure.Ekfac, CurvatureStructure.Tengrad, CurvatureStructure.Auto,
            CurvatureStructure.Diagonal, CurvatureStructure.Kbfgs, CurvatureStructure.HessianFree };
        foreach (var shape in Enum.GetValues<Shape>())
            foreach (var structure in structures)
                foreach (var fisher in new[] { FisherKind.Empirical, FisherKind.MonteCarlo, FisherKind.Exact })
                {
                    if (structure == CurvatureStructure.Kbfgs && (fisher != FisherKind.Empirical || shape is Shape.LayerNormed or Shape.BatchNormEval)) continue;
                    if (fisher == FisherKind.Exact && (shape == Shape.BatchOfOne || structure is not (CurvatureStructure.Kfac or CurvatureStructure.Ekfac))) continue;
                    if (structure == CurvatureStructure.HessianFree && shape == Shape.UnusedBranch) continue;
                    if (shape == Shape.BatchOfOne && structure is CurvatureStructure.Tengrad or CurvatureStructure.Auto or CurvatureStructure.Diagonal) continue;
                    data.Add(shape, structure, fisher);
                }
        return data;
    }

    private static NaturalGradientOptions Options(CurvatureStructure structure, FisherKind fisher, double weightDecay,
        double? klClip = null, KlClipForm form = KlClipForm.StepQuadraticForm, MetricForm metricForm = MetricForm.Uncentered,
        LayerDamping layerDamping = LayerDamping.Global) => new()
    {
        LearningRate = 0.2, Momentum = 0.5, WeightDecay = weightDecay, DampingSchedule = DampingSchedule.LevenbergMarquardt,
        KlClip = klClip, KlClipForm = form,
        Diagnostics = DiagnosticsLevel.Detailed, ReportPredictedKl = true,
        Preconditioner = new PreconditionerOptions
            { Structure = structure, Fisher = fisher, Damping = 0.05, Form = metricForm, LayerDamping = layerDamping },
    };

    /// <summary>The gradient matrices read inside the step's scope, and the plain parameters' .grad, are autograd's.</summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void GradientReadInsideTheStep_IsAutogradsGradient(Shape shape, CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        var expected = TwinGradients(shape);
        var net = new Net(shape);
        var (x, y) = Batch();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), Options(structure, fisher, 0));
        manual_seed(23);
        Assert.True(ngd.Step(x, y).Applied);
        var names = net.named_parameters().GroupBy(p => TensorIdentity.Key(p.parameter)).ToDictionary(g => g.Key, g => g.First().name);
        var matrices = ngd.Preconditioner.GradientMatrices();
        var layers = ngd.Preconditioner.Layers;
        Assert.NotEmpty(layers);
        for (int i = 0; i < layers.Count; i++)
        {
            var parts = layers[i].Parameters.Select(p => expected.TryGetValue(names[TensorIdentity.Key(p)], out var g) ? g : zeros_like(p)).ToList();
            TensorAssert.Close(layers[i].JoinMatrix(parts), matrices[i], rtol: 1e-11, atol: 1e-14, label: $"{shape} {structure} {fisher}: layer {layers[i].Name}");
        }
        var covered = ngd.Preconditioner.Capture.Layers.SelectMany(l => l.Adapter.Parameters).Select(TensorIdentity.Key).ToHashSet();
        foreach (var (name, p) in net.named_parameters().Where(p => p.parameter.requires_grad && !covered.Contains(TensorIdentity.Key(p.parameter))))
            TensorAssert.Close(expected[name], p.grad!, rtol: 1e-11, atol: 1e-14, label: $"{shape} {structure} {fisher}: plain {name}");
    }

    /// <summary>
    /// Three steps with Levenberg–Marquardt damping (ρ reads gᵀu), momentum and the detailed report (‖g‖) give the
    /// eager path's weights, damping, ρ, predicted KL and gradient norm.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cases))]
    public void Steps_WithLevenbergMarquardtAndTheDetailedReport_EqualTheEagerPath(Shape shape, CurvatureStructure structure, FisherKind fisher) =>
        AssertLazyEqualsEager(shape, structure, fisher, null, KlClipForm.StepQuadraticForm);

    /// <summary>As above with a KL clip that binds, of either form (η²Δᵀg reads g; ½uᵀMu does not, but ρ then does).</summary>
    [Theory]
    [InlineData(Shape.PlainParameter, CurvatureStructure.Kfac, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.PlainParameter, CurvatureStructure.Kfac, FisherKind.MonteCarlo, KlClipForm.StepQuadraticForm)]
    [InlineData(Shape.Dropout, CurvatureStructure.Ekfac, FisherKind.MonteCarlo, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.Dropout, CurvatureStructure.Ekfac, FisherKind.Empirical, KlClipForm.StepQuadraticForm)]
    [InlineData(Shape.FrozenWeight, CurvatureStructure.Tengrad, FisherKind.Empirical, KlClipForm.StepQuadraticForm)]
    [InlineData(Shape.FrozenWeight, CurvatureStructure.Tengrad, FisherKind.MonteCarlo, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.NoBias, CurvatureStructure.Kbfgs, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.BatchOfOne, CurvatureStructure.Kfac, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.BatchOfOne, CurvatureStructure.Ekfac, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.BatchOfOne, CurvatureStructure.Kfac, FisherKind.MonteCarlo, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.PlainUpstream, CurvatureStructure.Tengrad, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.NoBias, CurvatureStructure.Kfac, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.PlainParameter, CurvatureStructure.HessianFree, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.PlainParameter, CurvatureStructure.Diagonal, FisherKind.MonteCarlo, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.Sequence, CurvatureStructure.Auto, FisherKind.Empirical, KlClipForm.PreconditionedGradient)]
    [InlineData(Shape.NoBias, CurvatureStructure.Kbfgs, FisherKind.Empirical, KlClipForm.StepQuadraticForm)]
    public void Steps_WithABindingKlClip_EqualTheEagerPath(Shape shape, CurvatureStructure structure, FisherKind fisher, KlClipForm form) =>
        AssertLazyEqualsEager(shape, structure, fisher, 1e-5, form, clipMustBind: true);

    /// <summary>As above with the centred metric (TONGA: TENGraD's push-through does not apply) and per-layer relative damping.</summary>
    [Theory]
    [InlineData(CurvatureStructure.Tengrad, FisherKind.Empirical, MetricForm.Centered, LayerDamping.Global)]
    [InlineData(CurvatureStructure.Tengrad, FisherKind.MonteCarlo, MetricForm.Centered, LayerDamping.Relative)]
    [InlineData(CurvatureStructure.BlockDiagonal, FisherKind.Empirical, MetricForm.Centered, LayerDamping.Relative)]
    [InlineData(CurvatureStructure.Exact, FisherKind.MonteCarlo, MetricForm.Centered, LayerDamping.Global)]
    [InlineData(CurvatureStructure.Kfac, FisherKind.Empirical, MetricForm.Uncentered, LayerDamping.Relative)]
    [InlineData(CurvatureStructure.Ekfac, FisherKind.MonteCarlo, MetricForm.Uncentered, LayerDamping.Relative)]
    public void Steps_WithTheCentredMetricOrRelativeLayerDamping_EqualTheEagerPath(CurvatureStructure structure, FisherKind fisher,
        MetricForm metricForm, LayerDamping layerDamping) =>
        AssertLazyEqualsEager(Shape.PlainParameter, structure, fisher, null, KlClipForm.StepQuadraticForm, metricForm: metricForm, layerDamping: layerDamping);

    private static void AssertLazyEqualsEager(Shape shape, CurvatureStructure structure, FisherKind fisher, double? klClip, KlClipForm form,
        bool clipMustBind = false, MetricForm metricForm = MetricForm.Uncentered, LayerDamping layerDamping = LayerDamping.Global)
    {
        using var scope = NewDisposeScope();
        (List<Tensor> Weights, List<StepReport> Reports) Run(double weightDecay)
        {
            var net = new Net(shape);
            var (x, y) = Batch();
            using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), Options(structure, fisher, weightDecay, klClip, form, metricForm, layerDamping));
            var reports = new List<StepReport>();
            for (int i = 0; i < 3; i++)
            {
                using var step = NewDisposeScope();
                manual_seed(30 + i);
                var r = ngd.Step(x, y);
                Assert.True(r.Applied, $"{shape} {structure} {fisher}: step {i} skipped ({r.Rejection})");
                reports.Add(r);
            }
            return (net.parameters().Select(p => p.detach().clone()).ToList(), reports);
        }
        var eager = Run(1e-300);
        var lazy = Run(0);
        string label = $"{shape} {structure} {fisher}" + (klClip is null ? "" : $", KL clip ({form})");
        if (clipMustBind) Assert.Contains(lazy.Reports, r => r.KlClipScale < 1);
        for (int i = 0; i < eager.Weights.Count; i++) TensorAssert.Close(eager.Weights[i], lazy.Weights[i], rtol: 1e-9, label: $"{label}: parameter {i}");
        for (int i = 0; i < eager.Reports.Count; i++)
        {
            var (e, l) = (eager.Reports[i], lazy.Reports[i]);
            AssertClose(e.Damping, l.Damping, $"{label}: λ of step {i}");
            AssertClose(e.KlClipScale, l.KlClipScale, $"{label}: clip scale of step {i}");
            AssertClose(e.Rho, l.Rho, $"{label}: ρ of step {i}");
            AssertClose(e.PredictedKl, l.PredictedKl, $"{label}: predicted KL of step {i}");
            AssertClose(e.GradientNorm!.Value, l.GradientNorm!.Value, $"{label}: ‖g‖ of step {i}");
        }
    }

    /// <summary>
    /// A batch whose statistics overflow (inputs of 1e200: ĀᵀĀ is beyond float64) is skipped on both paths, and the
    /// steps around it, and a resume from the state dict in between, give the eager path's weights.
    /// </summary>
    [Theory]
    [InlineData(CurvatureStructure.Kfac, FisherKind.Empirical)]
    [InlineData(CurvatureStructure.Kfac, FisherKind.MonteCarlo)]
    [InlineData(CurvatureStructure.Ekfac, FisherKind.MonteCarlo)]
    [InlineData(CurvatureStructure.Tengrad, FisherKind.Empirical)]
    public void SkippedStepAndResume_EqualTheEagerPath(CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        List<Tensor> Run(double weightDecay)
        {
            var (x, y) = Batch();
            var net = new Net(Shape.PlainParameter);
            var options = Options(structure, fisher, weightDecay);
            var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), options);
            for (int i = 0; i < 4; i++)
            {
                if (i == 2)
                {
                    // Resume: a new network and optimiser from the state dicts.
                    var resumed = new Net(Shape.PlainParameter);
                    resumed.load_state_dict(net.state_dict());
                    var state = ngd.state_dict();
                    ngd.Dispose();
                    net = resumed;
                    ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), options);
                    ngd.load_state_dict(state);
                }
                using var step = NewDisposeScope();
                manual_seed(30 + i);
                var r = ngd.Step(i == 1 ? x.mul(1e200) : x, y);
                Assert.Equal(i != 1, r.Applied);
                if (i == 1) Assert.Equal(StepRejection.StatisticsOverflow, r.Rejection);
            }
            ngd.Dispose();
            return net.parameters().Select(p => p.detach().clone()).ToList();
        }
        var eager = Run(1e-300);
        var lazy = Run(0);
        for (int i = 0; i < eager.Count; i++) TensorAssert.Close(eager[i], lazy[i], rtol: 1e-9, label: $"{structure} {fisher}: parameter {i}");
    }

    /// <summary>In float32 the gradient read inside the step is autograd's, and steps give the eager path's weights, to float32's rounding.</summary>
    [Theory]
    [InlineData(CurvatureStructure.Kfac, FisherKind.Empirical)]
    [InlineData(CurvatureStructure.Kfac, FisherKind.MonteCarlo)]
    [InlineData(CurvatureStructure.Ekfac, FisherKind.Exact)]
    [InlineData(CurvatureStructure.Tengrad, FisherKind.Empirical)]
    public void Float32_EqualsAutogradAndTheEagerPath(CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        Module<Tensor, Tensor> Mlp()
        {
            manual_seed(51);
            return Sequential(("fc0", Linear(12, 16)), ("act0", Tanh()), ("fc1", Linear(16, 8)), ("act1", Tanh()), ("fc2", Linear(8, 3)));
        }
        manual_seed(52);
        var x = randn(32, 12);
        var y = randint(0, 3, new long[] { 32 }, dtype: ScalarType.Int64);
        var twin = Mlp();
        new CategoricalLikelihood().Loss(twin.call(x), y).backward();
        var expected = twin.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
        List<Tensor> Run(double weightDecay, bool checkGradient)
        {
            var net = Mlp();
            using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), Options(structure, fisher, weightDecay));
            for (int i = 0; i < 3; i++)
            {
                using var step = NewDisposeScope();
                Assert.True(ngd.Step(x, y).Applied);
                if (i > 0 || !checkGradient) continue;
                var matrices = ngd.Preconditioner.GradientMatrices();
                var layers = ngd.Preconditioner.Layers;
                for (int l = 0; l < layers.Count; l++)
                    TensorAssert.Close(cat(new[] { expected[$"{layers[l].Name}.weight"], expected[$"{layers[l].Name}.bias"].unsqueeze(1) }, 1),
                        matrices[l], rtol: 1e-5, label: $"{structure} {fisher}: layer {layers[l].Name}");
            }
            return net.parameters().Select(p => p.detach().clone()).ToList();
        }
        var eager = Run(1e-300, checkGradient: false);
        var lazy = Run(0, checkGradient: true);
        for (int i = 0; i < eager.Count; i++) TensorAssert.Close(eager[i], lazy[i], rtol: 1e-4, label: $"{structure} {fisher}: parameter {i}");
    }

    private static void AssertClose(double expected, double actual, string label) =>
        Assert.True(double.IsNaN(expected) ? double.IsNaN(actual) : Math.Abs(expected - actual) <= 1e-8 * Math.Abs(expected) + 1e-14,
            $"{label}: expected {expected:G17}, got {actual:G17}");
}
