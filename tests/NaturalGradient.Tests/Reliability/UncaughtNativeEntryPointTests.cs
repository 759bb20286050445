using NaturalGradient.Curvature;
using NaturalGradient.Curvature.HessianFree;
using NaturalGradient.Curvature.Ksd;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using NaturalGradient.Training.Data;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// TorchSharp 0.107's native entry points for autograd.grad (THSAutograd_grad), Generator.set_state
/// (THSGenerator_set_rng_state) and a tensor's storage address (THSStorage_data_ptr) do not catch libtorch's errors:
/// a failing call there terminates the process. Each
/// case below aborted the test host before its precondition was checked on the managed side; now it is a one-line
/// .NET exception and nothing changes.
/// </summary>
[Collection("Torch")]
public class UncaughtNativeEntryPointTests
{
    /// <summary>A 4 → 3 model that also owns a layer its forward pass never calls.</summary>
    private sealed class WithSpareLayer : Module<Tensor, Tensor>
    {
        private readonly Module<Tensor, Tensor> used, spare;

        public WithSpareLayer() : base(nameof(WithSpareLayer))
        {
            used = Linear(4, 3, dtype: ScalarType.Float64);
            spare = Linear(4, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => used.call(x);
    }

    [Fact]
    public void Ksd_ModelWithAnUnusedParameter_ThrowsNamingIt_AndNoWeightMoves()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var model = new WithSpareLayer();
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        using var ksd = new KrylovSubspaceDescent(model, new GaussianLikelihood());
        var e = Assert.Throws<ArgumentException>(() => ksd.Step(randn(6, 4, dtype: ScalarType.Float64), randn(6, 3, dtype: ScalarType.Float64)));
        Assert.Equal("gradient with respect to parameter 'spare.weight' (shape [2, 4]), which the output does not depend on: " +
            "every parameter given must be used in computing the output (freeze an unused one with requires_grad = false)", e.Message);
        foreach (var (p, q) in model.parameters().Zip(before)) Assert.True(p.detach().eq(q).all().item<bool>());
    }

    [Fact]
    public void GgnVectorProduct_OfAParameterOutsideTheGraph_OrAFrozenOne_Throws()
    {
        using var scope = NewDisposeScope();
        var w = randn(3, 4, dtype: ScalarType.Float64).requires_grad_(true);
        var other = randn(5, dtype: ScalarType.Float64).requires_grad_(true);
        var frozen = randn(3, dtype: ScalarType.Float64);
        var r = randn(6, 4, dtype: ScalarType.Float64).mm(w.t());
        var e = Assert.Throws<ArgumentException>(() => new GgnVectorProduct(r, new[] { w, other }, new GaussianLikelihood()));
        Assert.Equal("gradient with respect to input 1 (shape [5]), which the output does not depend on: " +
            "every parameter given must be used in computing the output (freeze an unused one with requires_grad = false)", e.Message);
        e = Assert.Throws<ArgumentException>(() => new GgnVectorProduct(r, new[] { w, frozen }, new GaussianLikelihood()));
        Assert.Equal("gradient with respect to input 1 (shape [3]), which does not require grad: pass only tensors with requires_grad = true", e.Message);
    }

    /// <summary>A 4 → 3 model whose auxiliary head runs in the forward pass but whose result is dropped.</summary>
    private sealed class WithDroppedHead : Module<Tensor, Tensor>
    {
        private readonly Module<Tensor, Tensor> body, aux;

        public WithDroppedHead() : base(nameof(WithDroppedHead))
        {
            body = Linear(4, 3, dtype: ScalarType.Float64);
            aux = Linear(4, 2, dtype: ScalarType.Float64);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            aux.call(x);
            return body.call(x);
        }
    }

    [Fact]
    public void HessianFree_LayerWhoseOutputIsDropped_ThrowsNamingTheLayer()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var model = new WithDroppedHead();
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.HessianFree, Fisher = FisherKind.Exact, Damping = 1e-3 },
        });
        var before = model.parameters().Select(p => p.detach().clone()).ToList();
        var e = Assert.Throws<ArgumentException>(() => ngd.Step(randn(6, 4, dtype: ScalarType.Float64), randn(6, 3, dtype: ScalarType.Float64)));
        Assert.Equal("gradient with respect to a parameter of layer 'aux' (Linear) (shape [2, 4]), which the output does not depend on: " +
            "every parameter given must be used in computing the output (freeze an unused one with requires_grad = false)", e.Message);
        foreach (var (p, q) in model.parameters().Zip(before)) Assert.True(p.detach().eq(q).all().item<bool>());
    }

    [Fact]
    public void PreconditionerState_WithAGeneratorStateOfTheWrongSize_IsRefused_AndNothingChanges()
    {
        using var scope = NewDisposeScope();
        var net = NonFiniteStatisticsTests.Net();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-3 },
        });
        var (x, y) = NonFiniteStatisticsTests.Data(poison: false)[0];
        ngd.Step(x, y);
        var state = ngd.state_dict();
        string key = state.Tensors.Keys.Single(k => k.EndsWith("generator", StringComparison.Ordinal));
        var good = state.Tensors[key];
        state.Tensors[key] = good.narrow(0, 0, 10);
        var e = Assert.Throws<InvalidDataException>(() => ngd.load_state_dict(state));
        Assert.Equal($"state tensor '{key}' is a Byte tensor of shape [10]; a random generator's state is a Byte tensor of shape [{good.shape[0]}] (from Generator.get_state())", e.Message);
        state.Tensors[key] = good.to_type(ScalarType.Float32);
        e = Assert.Throws<InvalidDataException>(() => ngd.load_state_dict(state));
        Assert.Equal($"state tensor '{key}' is a Float32 tensor of shape [{good.shape[0]}]; a random generator's state is a Byte tensor of shape [{good.shape[0]}] (from Generator.get_state())", e.Message);
        var after = ngd.state_dict();                       // the refused loads changed nothing
        Assert.Equal(state.Tensors.Keys, after.Tensors.Keys);
        foreach (var (k, t) in after.Tensors)
            if (k != key) Assert.True(t.shape.SequenceEqual(state.Tensors[k].shape) && t.eq(state.Tensors[k]).all().item<bool>(), k);
        Assert.True(after.Tensors[key].eq(good).all().item<bool>());
        Assert.Equal(state.Numbers, after.Numbers);
        state.Tensors[key] = good;
        ngd.load_state_dict(state);
    }

    [Fact]
    public void BatchIterator_SetStateOfTheWrongType_IsRefused()
    {
        using var scope = NewDisposeScope();
        var batches = new BatchIterator(zeros(8, 2), zeros(8), 4, seed: 1);
        using var good = batches.GetState();
        var e = Assert.Throws<InvalidDataException>(() => batches.SetState(zeros(good.shape[0], dtype: ScalarType.Float64)));
        Assert.Equal($"the batch order's state is a Float64 tensor of shape [{good.shape[0]}]; a random generator's state is a Byte tensor of shape [{good.shape[0]}] (from Generator.get_state())", e.Message);
        batches.SetState(good);
    }

    /// <summary>A 4 → 3 model that also holds a sparse 2 × 2 parameter (values 1, 2) added to its output's sum.</summary>
    private sealed class WithSparseParameter : Module<Tensor, Tensor>
    {
        private readonly Module<Tensor, Tensor> fc;
        private readonly TorchSharp.Modules.Parameter table;

        public WithSparseParameter() : base(nameof(WithSparseParameter))
        {
            fc = Linear(4, 3);
            table = new TorchSharp.Modules.Parameter(sparse_coo_tensor(tensor(new long[,] { { 0, 1 }, { 1, 0 } }), tensor(new float[] { 1, 2 }), new long[] { 2, 2 }));
            RegisterComponents();
        }

        public Tensor Table => table;

        public override Tensor forward(Tensor x) => fc.call(x) + table.to_dense().sum();
    }

    /// <summary>
    /// Parameters are told apart by their storage address; a sparse tensor has none (THSStorage_data_ptr aborted the
    /// process when the preconditioner was built). The sparse parameter is uncovered: it takes the plain step
    /// −η·∂L/∂values, with the gradient from a plain backward pass through a copy of the model.
    /// </summary>
    [Fact]
    public void ModelHoldingASparseParameter_IsBuiltAndStepped()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        var model = new WithSparseParameter();
        using var ngd = new NaturalGradientDescent(model, new GaussianLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 0.1,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-3 },
        });
        var x = randn(8, 4);
        var y = zeros(8, 3);
        double expectedGrad;
        using (var probe = new WithSparseParameter())
        {
            probe.load_state_dict(model.state_dict());
            var l = new GaussianLikelihood().Loss(probe.call(x), y);
            l.backward();
            expectedGrad = probe.Table.grad!.to_dense()[0, 1].ToDouble();
        }
        Assert.True(Math.Abs(expectedGrad) > 1e-3);
        var report = ngd.Step(x, y);
        Assert.True(report.Applied);
        var values = model.Table.detach().to_dense();
        Assert.Equal(1 - 0.1 * expectedGrad, values[0, 1].ToDouble(), 6);
        Assert.Equal(2 - 0.1 * expectedGrad, values[1, 0].ToDouble(), 6);
    }
}
