using NaturalGradient.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests;

/// <summary>Tiny seeded in-memory data sets for training and CLI tests (float32 features, like the loaders produce).</summary>
public static class TinyData
{
    /// <summary>y = x·w + 0.1·noise with d features and one target; first <paramref name="train"/> rows train.</summary>
    public static Dataset Regression(int train = 48, int test = 16, int d = 3, long seed = 7)
    {
        using var g = new Generator((ulong)seed);
        var x = randn(new long[] { train + test, d }, generator: g);
        var w = randn(new long[] { d, 1 }, generator: g);
        var y = x.matmul(w) + 0.1 * randn(new long[] { train + test, 1 }, generator: g);
        return new Dataset("tiny-regression", TaskKind.Regression, x[..train].clone(), y[..train].clone(),
            x[train..].clone(), y[train..].clone(), provenance: "generated in memory");
    }

    /// <summary>Three Gaussian blobs in d dimensions; labels are int64 class indices.</summary>
    public static Dataset Classification(int train = 60, int test = 30, int d = 2, long seed = 11)
    {
        using var g = new Generator((ulong)seed);
        long n = train + test;
        var labels = randint(0, 3, new[] { n }, dtype: ScalarType.Int64, generator: g);
        var centers = 3 * randn(new long[] { 3, d }, generator: g);
        var x = centers.index_select(0, labels) + randn(new long[] { n, d }, generator: g);
        return new Dataset("tiny-classes", TaskKind.Classification, x[..train].clone(), labels[..train].clone(),
            x[train..].clone(), labels[train..].clone(), classNames: new[] { "a", "b", "c" }, provenance: "generated in memory");
    }

    /// <summary>Random 1×8×8 "images" with 2 classes (for the conv net).</summary>
    public static Dataset Images(int train = 16, int test = 8, long seed = 3)
    {
        using var g = new Generator((ulong)seed);
        long n = train + test;
        var x = randn(new long[] { n, 1, 8, 8 }, generator: g);
        var labels = x.mean(new long[] { 1, 2, 3 }).gt(0).to_type(ScalarType.Int64);
        return new Dataset("tiny-images", TaskKind.Classification, x[..train].clone(), labels[..train].clone(),
            x[train..].clone(), labels[train..].clone(), classNames: new[] { "neg", "pos" });
    }
}
