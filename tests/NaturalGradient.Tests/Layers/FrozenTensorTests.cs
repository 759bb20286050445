using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// Issue 11 §1.1: Linear(4,5) → tanh → Linear(5,3), float64, fc1.weight frozen, m = 8, Gaussian, exact Fisher, λ = 1e-2,
/// lr 0.5, 3 steps, every structure. The frozen weight never moves and never gets a .grad; the trainable tensors get
/// the solve with their own metric block, checked against a dense Fisher built from explicit per-output Jacobians over
/// the trainable tensors only (fc1.bias, fc2.weight, fc2.bias).
/// </summary>
[Collection("Torch")]
public class FrozenTensorTests
{
    private const double Lambda = 1e-2, Lr = 0.5;

    public static TheoryData<CurvatureStructure> Structures => new()
    {
        CurvatureStructure.Exact, CurvatureStructure.BlockDiagonal, CurvatureStructure.Tengrad, CurvatureStructure.Diagonal,
        CurvatureStructure.Kfac, CurvatureStructure.Ekfac, CurvatureStructure.HessianFree,
    };

    private static (Sequential Model, Linear Fc1, Linear Fc2, Tensor X, Tensor Y) Case()
    {
        var model = LayerModels.FrozenCaseMlp();
        var fc1 = (Linear)model.named_modules().First(nm => nm.name == "fc1").module;
        var fc2 = (Linear)model.named_modules().First(nm => nm.name == "fc2").module;
        fc1.weight!.requires_grad = false;
        return (model, fc1, fc2, LayerModels.Normal(31, 8, 4), LayerModels.Normal(32, 8, 3));
    }

    /// <summary>M = (1/m) Σᵢ J_rᵢᵀ J_rᵢ over θ = (fc1.bias, fc2.weight, fc2.bias) and g = ∇L, by explicit autograd per output.</summary>
    private static (Tensor M, Tensor G) DenseReference(Sequential model, Linear fc1, Linear fc2, Tensor x, Tensor y)
    {
        var theta = new Tensor[] { fc1.bias!, fc2.weight!, fc2.bias! };
        var lik = new GaussianLikelihood();
        var g = cat(autograd.grad(new[] { lik.Loss(model.call(x), y) }, theta).Select(t => t.flatten()).ToArray());
        var r = model.call(x);
        Tensor? m = null;
        for (long i = 0; i < x.shape[0]; i++)
        {
            var rows = new List<Tensor>();
            for (long k = 0; k < r.shape[1]; k++)
                rows.Add(cat(autograd.grad(new[] { r[i, k] }, theta, retain_graph: true).Select(t => t.flatten()).ToArray()));
            var j = stack(rows.ToArray());
            m = m is null ? j.t().mm(j) : m + j.t().mm(j);
        }
        return (m! / x.shape[0], g);
    }

    [Theory]
    [MemberData(nameof(Structures))]
    public void FrozenWeight_NeverMoves_AndTheBiasStepIsItsOwnBlockSolve(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var (model, fc1, fc2, x, y) = Case();
        var frozen0 = fc1.weight!.detach().clone();
        var bias0 = fc1.bias!.detach().clone();
        var (m, g) = DenseReference(model, fc1, fc2, x, y);

        Tensor expected;
        var mbb = m.narrow(0, 0, 5).narrow(1, 0, 5);
        var gb = g.narrow(0, 0, 5);
        var eye5 = eye(5, dtype: ScalarType.Float64);
        expected = structure switch
        {
            CurvatureStructure.Exact or CurvatureStructure.HessianFree =>
                linalg.solve(m + Lambda * eye(m.shape[0], dtype: ScalarType.Float64), g).narrow(0, 0, 5),
            CurvatureStructure.Diagonal => gb / (mbb.diagonal() + Lambda),
            _ => linalg.solve(mbb + Lambda * eye5, gb),     // block, TENGraD, K-FAC and EKFAC: the bias-only block is exact
        };

        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = Lr,
            Preconditioner = new PreconditionerOptions
            {
                Structure = structure, Fisher = FisherKind.Exact, Damping = Lambda,
                Kfac = new KfacOptions { InverseMethod = KfacInverseMethod.Eigen, DampingMode = KfacDampingMode.Eigenbasis },
                HessianFree = new() { MaxIterations = 200, RelativeTolerance = 1e-13, WarmStart = false },
            },
        });
        var report = ngd.Preconditioner.Coverage();
        Assert.Contains(report.Entries, e => e.Parameter == "fc1.weight" && !e.Covered && e.Treatment.StartsWith("frozen"));
        Assert.Equal(3, report.Covered.Count());

        for (int step = 0; step < 3; step++)
        {
            var r = ngd.Step(x, y);
            Assert.True(r.Applied);
            Assert.True(fc1.weight.grad is null || fc1.weight.grad.IsInvalid, "a frozen tensor received a .grad");
            Assert.True(fc1.weight.detach().eq(frozen0).all().item<bool>(), $"the frozen weight moved at step {step}");
            if (step == 0)
            {
                var step0 = (bias0 - fc1.bias!.detach()) / Lr;
                TensorAssert.Close(expected, step0, rtol: structure == CurvatureStructure.HessianFree ? 1e-7 : 1e-9, label: $"{structure}: bias step");
            }
        }
    }

    [Fact]
    public void Precondition_WritesNoGradOnAFrozenTensor_SoTorchOptimisersLeaveItAlone()
    {
        using var scope = NewDisposeScope();
        var (model, fc1, _, x, y) = Case();
        var frozen0 = fc1.weight!.detach().clone();
        using var pc = new NaturalGradientPreconditioner(model, new GaussianLikelihood(),
            new PreconditionerOptions { Structure = CurvatureStructure.Exact, Fisher = FisherKind.Exact, Damping = Lambda });
        var sgd = optim.SGD(model.parameters(), Lr);
        for (int step = 0; step < 3; step++)
        {
            sgd.zero_grad();
            pc.Capture.Clear();
            pc.Backward(model.call(x), y);
            Assert.True(pc.Precondition().Applied);
            Assert.True(fc1.weight.grad is null || fc1.weight.grad.IsInvalid);
            sgd.step();
        }
        Assert.True(fc1.weight.detach().eq(frozen0).all().item<bool>());
    }

    [Fact]
    public void BypassedLayerWithFrozenWeight_RaisesLayerNotObserved()
    {
        using var scope = NewDisposeScope();
        var model = new BypassingModel();
        model.inner.weight!.requires_grad = false;
        using var pc = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), new PreconditionerOptions { Structure = CurvatureStructure.HessianFree });
        var ex = Assert.Throws<LayerNotObservedException>(() => pc.Backward(model.call(LayerModels.Normal(1, 4, 3)), LayerModels.Normal(2, 4, 2)));
        Assert.Equal("inner", ex.LayerName);
    }

    [Fact]
    public void FreezingAfterConstruction_IsRefusedWithAMessage()
    {
        using var scope = NewDisposeScope();
        var (model, fc1, _, x, y) = Case();
        fc1.weight!.requires_grad = true;
        using var pc = new NaturalGradientPreconditioner(model, new GaussianLikelihood(), new PreconditionerOptions { Structure = CurvatureStructure.BlockDiagonal });
        fc1.weight.requires_grad = false;
        var ex = Assert.Throws<InvalidOperationException>(() => pc.Backward(model.call(x), y));
        Assert.Contains("layer 'fc1' (Linear) changed requires_grad to false", ex.Message);
    }

    private sealed class BypassingModel : nn.Module<Tensor, Tensor>
    {
        public readonly Linear inner, outer;
        public BypassingModel() : base("bypass")
        {
            manual_seed(0);
            inner = nn.Linear(3, 4, dtype: ScalarType.Float64);
            outer = nn.Linear(4, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => outer.call(tanh(inner.forward(x)));
    }
}
