using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Reference;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Layers;

/// <summary>
/// For every layer kind and graph shape, every exact structure (exact, block, TENGraD, diagonal; Hessian-free's products)
/// and the empirical and exact Fishers: each block equals the matching block of a dense Fisher built by brute force
/// (per-example backward loops, or per-output Jacobians), and each damped solve equals a direct solve of that block.
/// </summary>
[Collection("Torch")]
public class LayerBlockTests
{
    private const double Lambda = 0.1;

    public static TheoryData<string, CurvatureStructure, FisherKind> Cases()
    {
        var data = new TheoryData<string, CurvatureStructure, FisherKind>();
        foreach (var n in LayerCases.Names)
            foreach (var s in new[] { CurvatureStructure.Exact, CurvatureStructure.BlockDiagonal, CurvatureStructure.Tengrad, CurvatureStructure.Diagonal })
                foreach (var f in new[] { FisherKind.Empirical, FisherKind.Exact })
                    data.Add(n, s, f);
        return data;
    }

    /// <summary>The dense reference metric over the covered layers (W̄ row-major, layers in order).</summary>
    internal static Tensor ReferenceFisher(LayerCase c, IReadOnlyList<ILayerAdapter> layers, FisherKind kind)
    {
        if (kind == FisherKind.Exact) return ExactFisherReference.Build(c.Model, layers, c.X, c.Likelihood);
        var j = BruteForce.Jacobian(BruteForce.PerExampleGradients(c.Model, layers, c.X, c.Likelihood.PerExampleLoss, c.Y));
        return BruteForce.EmpiricalFisher(j);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Blocks_EqualTheDenseFisherBlocks_AndSolvesEqualDirectSolves(string name, CurvatureStructure structure, FisherKind fisher)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        var options = new PreconditionerOptions { Structure = structure, Fisher = fisher, Damping = Lambda };
        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood, options);
        var adapters = pc.Capture.Layers.Select(l => l.Adapter).ToList();
        pc.Capture.Enabled = false;
        var reference = ReferenceFisher(c, adapters, fisher);
        pc.Capture.Enabled = true;

        pc.Capture.Clear();
        pc.CollectMetric(c.Model.call(c.X), c.Y);
        var layers = pc.Layers;
        Assert.Equal(adapters.Count, layers.Count);

        manual_seed(99);
        var g = layers.Select(l => randn(l.OutputDim, l.InputDim, dtype: ScalarType.Float64)).ToList();
        var delta = pc.Solve(g, Lambda);

        if (structure == CurvatureStructure.Exact)
        {
            TensorAssert.Close(reference, ((ExactCurvature)pc.Curvature).ToDense(), rtol: 1e-10, label: $"{name}: exact metric");
            var flat = BruteForce.DampedSolve(reference, Lambda, cat(g.Select(t => t.flatten()).ToArray()));
            TensorAssert.Close(flat, cat(delta.Select(t => t.flatten()).ToArray()), rtol: 1e-8, label: $"{name}: exact solve");
            return;
        }

        long offset = 0;
        var curvature = (BlockDiagonalCurvature)pc.Curvature;
        for (int l = 0; l < layers.Count; l++)
        {
            long p = layers[l].ParameterCount;
            var block = reference.narrow(0, offset, p).narrow(1, offset, p);
            offset += p;
            if (structure == CurvatureStructure.Diagonal) block = diag(block.diagonal());
            string label = $"{name}, {structure}, {fisher}: layer {layers[l].Name} ({layers[l].KindName})";
            TensorAssert.Close(block, curvature.Block(layers[l].Name).ToDense(), rtol: 1e-10, label: label + " block");
            var expected = BruteForce.DampedSolve(block, Lambda, g[l].flatten()).reshape(g[l].shape);
            TensorAssert.Close(expected, delta[l], rtol: 1e-8, label: label + " solve");
            TensorAssert.Close(block.mv(g[l].flatten()).reshape(g[l].shape), curvature.Block(layers[l].Name).Multiply(g[l]), rtol: 1e-10, label: label + " product");
        }
    }

    public static TheoryData<string, CurvatureStructure> LossBackwardCases()
    {
        var data = new TheoryData<string, CurvatureStructure>();
        foreach (var n in LayerCases.Names)
            foreach (var s in new[] { CurvatureStructure.BlockDiagonal, CurvatureStructure.Tengrad })
                data.Add(n, s);
        return data;
    }

    /// <summary>
    /// The empirical Fisher taken from the training loss's own backward pass (<see cref="NaturalGradientPreconditioner.Backward"/>,
    /// no second pass) gives the same blocks as the dense reference for every layer kind — including a layer called
    /// several times in one forward — and the loss gradient's solve (TENGraD's push-through form) equals the direct solve.
    /// </summary>
    [Theory]
    [MemberData(nameof(LossBackwardCases))]
    public void LossBackward_EmpiricalBlocks_EqualTheDenseFisherBlocks_AndTheGradientSolveEqualsTheDirectSolve(string name, CurvatureStructure structure)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood,
            new PreconditionerOptions { Structure = structure, Fisher = FisherKind.Empirical, Damping = Lambda });
        var adapters = pc.Capture.Layers.Select(l => l.Adapter).ToList();
        pc.Capture.Enabled = false;
        var reference = ReferenceFisher(c, adapters, FisherKind.Empirical);
        pc.Capture.Enabled = true;

        pc.Capture.Clear();
        c.Model.zero_grad();
        pc.Backward(c.Model.call(c.X), c.Y);
        var layers = pc.Layers;
        Assert.Equal(adapters.Count, layers.Count);
        var g = pc.GradientMatrices();
        var delta = pc.Solve(g, Lambda);
        long offset = 0;
        var curvature = (BlockDiagonalCurvature)pc.Curvature;
        for (int l = 0; l < layers.Count; l++)
        {
            long p = layers[l].ParameterCount;
            var block = reference.narrow(0, offset, p).narrow(1, offset, p);
            offset += p;
            string label = $"{name}, {structure}, loss backward: layer {layers[l].Name} ({layers[l].KindName})";
            TensorAssert.Close(block, curvature.Block(layers[l].Name).ToDense(), rtol: 1e-10, label: label + " block");
            var expected = BruteForce.DampedSolve(block, Lambda, g[l].flatten()).reshape(g[l].shape);
            TensorAssert.Close(expected, delta[l], rtol: 1e-8, label: label + " solve");
        }
    }

    public static TheoryData<string> Names => LayerCases.All();

    [Theory]
    [MemberData(nameof(Names))]
    public void HessianFreeProducts_EqualTheDenseExactFisher(string name)
    {
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        using var pc = new NaturalGradientPreconditioner(c.Model, c.Likelihood,
            new PreconditionerOptions { Structure = CurvatureStructure.HessianFree, Damping = Lambda });
        var adapters = pc.Capture.Layers.Select(l => l.Adapter).ToList();
        pc.Capture.Enabled = false;
        var reference = ReferenceFisher(c, adapters, FisherKind.Exact);
        pc.Capture.Enabled = true;
        pc.Capture.Clear();
        pc.CollectMetric(c.Model.call(c.X), c.Y);

        manual_seed(98);
        var v = pc.Layers.Select(l => randn(l.OutputDim, l.InputDim, dtype: ScalarType.Float64)).ToList();
        var mv = pc.Curvature.Multiply(pc.Layers, v);
        var expected = reference.mv(cat(v.Select(t => t.flatten()).ToArray()));
        TensorAssert.Close(expected, cat(mv.Select(t => t.flatten()).ToArray()), rtol: 1e-10, label: $"{name}: G v");
    }
}
