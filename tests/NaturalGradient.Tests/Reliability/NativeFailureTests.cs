using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Numerics;
using NaturalGradient.Optim;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Reliability;

/// <summary>
/// Issue 11 §1.5: a libtorch failure reaches the user as a .NET exception whose message is one line naming what
/// failed and what to do (never a native dump or a process abort).
/// </summary>
[Collection("Torch")]
public class NativeFailureTests
{
    [Fact]
    public void EighOfANaNFactor_IsOneLineNamingTheFactorization()
    {
        using var scope = NewDisposeScope();
        using var basis = new KroneckerEigenbasis();
        var a = full(3, 3, double.NaN, dtype: ScalarType.Float64);
        var g = eye(2, dtype: ScalarType.Float64);
        var e = Assert.Throws<NativeOperationException>(() => basis.Refresh(a, g));
        Assert.StartsWith("eigendecomposition (eigh) of a 3×3 Kronecker factor failed in libtorch: ", e.Message);
        Assert.EndsWith("; the factor holds ∞ or NaN or is too ill-conditioned: scale the inputs, raise the damping or use a float64 model", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.IsAssignableFrom<System.Runtime.InteropServices.ExternalException>(e.InnerException);
    }

    /// <summary>
    /// TorchSharp's native matmul does not catch libtorch's errors (a mismatch there aborts the process); the library's
    /// matmuls check the shapes first and throw, and give matmul's result (batch dimensions broadcast) otherwise.
    /// </summary>
    [Fact]
    public void MatMul_OfOperandsThatDoNotFit_ThrowsNamingBothShapes()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<ArgumentException>(() => ones(30, 4).MatMul(ones(5, 5)));
        Assert.Equal("matrix product of shapes [30, 4] and [5, 5]: the operands do not fit (inner dimensions 4 and 5)", e.Message);
        e = Assert.Throws<ArgumentException>(() => ones(3, 2, 4).MatMul(ones(2, 4, 5)));
        Assert.Equal("matrix product of shapes [3, 2, 4] and [2, 4, 5]: the operands do not fit (inner dimensions 4 and 4)", e.Message);
        Assert.Throws<ArgumentException>(() => ones(4).MatMul(ones(4, 2)));
        var a = randn(3, 1, 2, 4, dtype: ScalarType.Float64);
        var b = randn(5, 4, 6, dtype: ScalarType.Float64);
        TensorAssert.Close(a.matmul(b), a.MatMul(b), rtol: 0, label: "broadcast batch dimensions");
        Assert.Equal(new long[] { 3, 5, 2, 6 }, a.MatMul(b).shape);
        e = Assert.Throws<ArgumentException>(() => ones(2, 3, dtype: ScalarType.BFloat16).MatMul(ones(3, 2)));
        Assert.Equal("matrix product of a BFloat16 and a Float32 operand: matmul needs one dtype", e.Message);
    }

    [Fact]
    public void NativeCall_KeepsOnlyLibtorchsFirstLine()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<NativeOperationException>(() =>
            NativeCall.Run("filling a float32 tensor with 1e300", () => ones(2, dtype: ScalarType.Float32).fill_(1e300), "use a smaller value"));
        Assert.Matches("^filling a float32 tensor with 1e300 failed in libtorch: [^\n]*overflow[^\n]*; use a smaller value$", e.Message);
    }

    private static NaturalGradientDescent Float32Descent(CurvatureStructure structure, double damping, double lr, out Tensor x, out Tensor y,
        out nn.Module<Tensor, Tensor> net)
    {
        net = NonFiniteStatisticsTests.Net();
        (x, y) = NonFiniteStatisticsTests.Data(poison: false)[0];
        return new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = lr,
            Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Exact, Damping = damping },
        });
    }

    [Theory]
    [InlineData(CurvatureStructure.Exact)]
    [InlineData(CurvatureStructure.Tengrad)]
    [InlineData(CurvatureStructure.Kfac)]
    [InlineData(CurvatureStructure.Ekfac)]
    [InlineData(CurvatureStructure.HessianFree)]
    public void DampingBeyondFloat32_IsOneLine_AndNoWeightMoves(CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        using var ngd = Float32Descent(structure, 1e300, 0.1, out var x, out var y, out var net);
        var before = net.parameters().Select(p => p.detach().clone()).ToList();
        var e = Assert.Throws<ArgumentException>(() => ngd.Step(x, y));
        Assert.Equal("damping 1E+300 does not fit the model's Float32 (largest 3.4E+38); use a smaller damping or a float64 model", e.Message);
        foreach (var (p, q) in net.parameters().Zip(before)) Assert.True(p.detach().eq(q).all().item<bool>());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.9)]
    public void LearningRateOverflowingFloat32_SkipsTheStep_AndNeitherWeightsNorMomentumTakeIt(double momentum)
    {
        using var scope = NewDisposeScope();
        var net = NonFiniteStatisticsTests.Net();
        var data = NonFiniteStatisticsTests.Data(poison: false);
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            LearningRate = 1e300, Momentum = momentum,
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-3 },
        });
        var before = net.parameters().Select(p => p.detach().clone()).ToList();
        for (int b = 0; b < 3; b++)
        {
            var report = ngd.Step(data[b].X, data[b].Y);
            Assert.False(report.Applied);
            Assert.Equal(StepRejection.NonFiniteDirection, report.Rejection);
        }
        foreach (var (p, q) in net.parameters().Zip(before)) Assert.True(p.detach().eq(q).all().item<bool>());
    }

    [Fact]
    public void InputOfTheWrongWidth_IsOneLineFromTheStep_NotANativeDump()
    {
        using var scope = NewDisposeScope();
        var net = NonFiniteStatisticsTests.Net();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-3 },
        });
        var x = zeros(16, 5, dtype: ScalarType.Float32);
        var y = zeros(16, dtype: ScalarType.Int64);
        var e = Assert.Throws<NativeOperationException>(() => ngd.Step(x, y));
        Assert.Equal("the natural-gradient step (Kfac) failed in libtorch: mat1 and mat2 shapes cannot be multiplied (16x5 and 4x8); " + NativeCall.DefaultAdvice, e.Message);
    }

    /// <summary>
    /// An integer batch into a Linear layer (a dtype mismatch the step cannot check beforehand: Embedding layers take
    /// integers) reaches libtorch; the advice then names dtypes, not non-finite values.
    /// </summary>
    [Fact]
    public void IntegerInputsForALinearLayer_AreOneLineAboutDtypes()
    {
        using var scope = NewDisposeScope();
        var net = NonFiniteStatisticsTests.Net();
        using var ngd = new NaturalGradientDescent(net, new CategoricalLikelihood(), new NaturalGradientOptions
        {
            Preconditioner = new PreconditionerOptions { Structure = CurvatureStructure.Kfac, Fisher = FisherKind.Exact, Damping = 1e-3 },
        });
        var e = Assert.Throws<NativeOperationException>(() => ngd.Step(zeros(16, 4, dtype: ScalarType.Int64), zeros(16, dtype: ScalarType.Int64)));
        Assert.Equal("the natural-gradient step (Kfac) failed in libtorch: mat1 and mat2 must have the same dtype, but got Long and Float; " +
            "the tensors' dtypes differ: inputs of Linear and Conv2d layers must have the model's floating-point dtype (integer indices go to Embedding layers)", e.Message);
    }
}
