using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Fisher;
using NaturalGradient.Likelihoods;
using NaturalGradient.Preconditioning;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Engine;

/// <summary>A small seeded problem run through the preconditioner: model, data, and what it captured.</summary>
public sealed class EngineProblem
{
    public required nn.Module<Tensor, Tensor> Model { get; init; }
    public required Tensor X { get; init; }
    public required Tensor Y { get; init; }
    public required ILikelihood Likelihood { get; init; }
    public required NaturalGradientPreconditioner Preconditioner { get; init; }
    public IReadOnlyList<ILayerAdapter> Layers => Preconditioner.Layers;

    /// <summary>MLP of <paramref name="sizes"/> on m random inputs; regression (Gaussian) or classification (categorical) targets.</summary>
    public static EngineProblem Create(int[] sizes, int m, LikelihoodKind kind, PreconditionerOptions options, bool bias = true, long seed = 0)
    {
        var model = TestModels.Mlp(sizes, "tanh", bias, seed);
        var x = TestModels.Inputs(m, sizes[0], seed + 1);
        manual_seed(seed + 2);
        Tensor y = kind switch
        {
            LikelihoodKind.Gaussian => randn(m, sizes[^1], dtype: ScalarType.Float64),
            LikelihoodKind.Categorical => randint(0, sizes[^1], new long[] { m }),
            _ => randint(0, 2, new long[] { m, sizes[^1] }).to_type(ScalarType.Float64),
        };
        var lik = NaturalGradient.Likelihoods.Likelihood.Create(kind);
        var pre = new NaturalGradientPreconditioner(model, lik, options);
        var output = model.call(x);
        pre.Backward(output, y);
        return new EngineProblem { Model = model, X = x, Y = y, Likelihood = lik, Preconditioner = pre };
    }

    /// <summary>The flat gradient over covered layers (W̄ row-major, layers in order).</summary>
    public Tensor FlatGradient() => cat(Preconditioner.GradientMatrices().Select(g => g.flatten()).ToArray());

    public static Tensor Flatten(IReadOnlyList<Tensor> perLayer) => cat(perLayer.Select(g => g.flatten()).ToArray());
}
