using BenchmarkDotNet.Attributes;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench;

/// <summary>Micro-benchmarks of the kernels the methods spend their time in.</summary>
[MemoryDiagnoser(false)]
public class Kernels
{
    private Tensor _spd = null!, _rhs = null!, _a = null!, _g = null!, _ga = null!, _gg = null!, _grad = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        manual_seed(0);
        var m = randn(512, 600);
        _spd = (m.mm(m.t()) / 600 + 0.01 * eye(512)).DetachFromDisposeScope();
        _rhs = randn(512).DetachFromDisposeScope();
        var a = randn(256, 257);
        _a = (a.t().mm(a) / 256 + 0.1 * eye(257)).DetachFromDisposeScope();
        var g = randn(256, 256);
        _g = (g.t().mm(g) / 256 + 0.1 * eye(256)).DetachFromDisposeScope();
        _ga = linalg.inv(_a).DetachFromDisposeScope();
        _gg = linalg.inv(_g).DetachFromDisposeScope();
        _grad = randn(256, 257).DetachFromDisposeScope();
    }

    [Benchmark(Description = "SafeCholesky.Solve 512×512")]
    public void CholeskySolve()
    {
        using var _ = NewDisposeScope();
        SafeCholesky.Solve(_spd, _rhs);
    }

    [Benchmark(Description = "Kronecker precondition G⁻¹ ∇W̄ A⁻¹, 256×257 layer")]
    public void KroneckerPrecondition()
    {
        using var _ = NewDisposeScope();
        _gg.mm(_grad).mm(_ga);
    }
}
