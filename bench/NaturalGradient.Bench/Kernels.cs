using BenchmarkDotNet.Attributes;
using NaturalGradient.Capture;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Fisher;
using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Bench;

/// <summary>
/// Micro-benchmarks of the library's own kernels (not re-implementations), float32, one torch thread, each
/// operation in its own dispose scope:
/// K-FAC's Kronecker precondition of a 256 × 257 layer (cached eigenbases, factored damping: four matmuls and a
/// rescaling), SafeCholesky.Solve of a 512 × 512 SPD system, and TENGraD's Woodbury solve on a 512 × 513 layer for
/// m = 128 gradient samples (128 × 128 Cholesky solve, J g, Jᵀ u). Also what the step's bookkeeping costs per call:
/// reading a shape (TorchSharp's <c>shape</c>, which fills its array through a native callback, against the library's
/// <c>Sizes()</c>: <c>dim()</c> and one <c>size(i)</c> per dimension) and reading three float64 values on the host
/// (<c>data&lt;double&gt;().ToArray()</c> against <see cref="HostRead.Doubles"/>).
/// </summary>
[MemoryDiagnoser(false)]
public class Kernels
{
    private nn.Module<Tensor, Tensor>? _kfacLayer, _tengradLayer;
    private KfacBlock? _kfac;
    private TengradBlock? _tengrad;
    private Tensor _spd = null!, _rhs = null!, _kfacGrad = null!, _tengradGrad = null!, _rows = null!, _three = null!;

    [GlobalSetup]
    public void Setup()
    {
        set_num_threads(1);
        manual_seed(0);
        var m = randn(512, 600);
        _spd = m.mm(m.t()) / 600 + 0.01 * eye(512);
        _rhs = randn(512);

        // K-FAC: a 256 → 256 Linear layer, W̄ = 256 × 257; factors from 256 examples, eigendecompositions done in Update.
        var kfacLinear = nn.Linear(256, 256);
        _kfacLayer = kfacLinear;
        _kfac = new KfacBlock(new LinearAdapter("fc", kfacLinear));
        _kfac.Update(Statistics(new LinearAdapter("fc", kfacLinear), examples: 256, inputs: 256, outputs: 256), step: 0);
        _kfacGrad = randn(256, 257);

        // TENGraD: a 512 → 512 Linear layer, W̄ = 512 × 513, m = 128; Update forms the 128 × 128 Gram matrix.
        var tengradLinear = nn.Linear(512, 512);
        _tengradLayer = tengradLinear;
        _tengrad = new TengradBlock();
        _tengrad.Update(Statistics(new LinearAdapter("fc", tengradLinear), examples: 128, inputs: 512, outputs: 512), step: 0);
        _tengradGrad = randn(512, 513);

        _rows = randn(128, 1, 20);
        _three = randn(3, dtype: ScalarType.Float64);
    }

    /// <summary>Empirical-Fisher statistics of random activations (with the bias column of ones) and output gradients.</summary>
    private static LayerStatistics Statistics(ILayerAdapter layer, int examples, int inputs, int outputs)
    {
        var a = cat(new[] { randn(examples, 1, inputs), ones(examples, 1, 1) }, dim: 2); // m × T × in'
        var d = randn(1, examples, 1, outputs);                                            // s × m × T × out
        return new LayerStatistics(layer, a, d, weight: 1.0 / examples);
    }

    [Benchmark(Description = "K-FAC precondition, 256×257 layer (KfacBlock.Precondition)")]
    public void KroneckerPrecondition()
    {
        using var _ = NewDisposeScope();
        _kfac!.Precondition(_kfacGrad, 1e-2);
    }

    [Benchmark(Description = "SafeCholesky.Solve, 512×512")]
    public void CholeskySolve()
    {
        using var _ = NewDisposeScope();
        SafeCholesky.Solve(_spd, _rhs);
    }

    [Benchmark(Description = "TENGraD solve, m=128, 512×513 layer (TengradBlock.Precondition)")]
    public void TengradSolve()
    {
        using var _ = NewDisposeScope();
        _tengrad!.Precondition(_tengradGrad, 1e-2);
    }

    [Benchmark(Description = "shape of a 128×1×20 tensor: Tensor.shape")]
    public long ShapeRead() => _rows.shape[^1];

    [Benchmark(Description = "shape of a 128×1×20 tensor: dim() and size(i) (Sizes)")]
    public long SizesRead() => _rows.Sizes()[^1];

    [Benchmark(Description = "3 float64 values to the host: data<double>().ToArray()")]
    public double AccessorRead() => _three.data<double>().ToArray()[0];

    [Benchmark(Description = "3 float64 values to the host: HostRead.Doubles")]
    public double DirectRead() => HostRead.Doubles(_three)[0];

    [GlobalCleanup]
    public void Cleanup()
    {
        _kfac?.Dispose();
        _kfacLayer?.Dispose();
        _tengradLayer?.Dispose();
    }
}
