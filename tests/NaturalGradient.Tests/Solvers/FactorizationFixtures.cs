using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Solvers;

/// <summary>Matrices and thread settings shared by the <see cref="NaturalGradient.Numerics.FactorizationQueue"/> tests.</summary>
internal static class FactorizationFixtures
{
    /// <summary>A seeded float64 d × d SPD matrix: XᵀX / 2d of 2d Gaussian rows, plus 0.1 I.</summary>
    public static Tensor Spd(int d, long seed)
    {
        manual_seed(seed);
        var x = randn(2 * d, d, dtype: ScalarType.Float64);
        var a = x.t().mm(x).div_(2 * d);
        a.diagonal().add_(0.1);
        return a;
    }

    /// <summary>Runs <paramref name="body"/> with the caller's torch thread count at <paramref name="threads"/>, then restores it.</summary>
    public static void WithThreads(int threads, Action body)
    {
        int before = torch.get_num_threads();
        torch.set_num_threads(threads);
        try { body(); }
        finally { torch.set_num_threads(before); }
    }
}
