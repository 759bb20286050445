using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests;

/// <summary>Tiny seeded float64 models and data for tests.</summary>
public static class TestModels
{
    public static Module<Tensor, Tensor> Mlp(int[] sizes, string activation = "tanh", bool bias = true, long seed = 0)
    {
        manual_seed(seed);
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            layers.Add(($"fc{i}", Linear(sizes[i], sizes[i + 1], hasBias: bias, dtype: ScalarType.Float64)));
            if (i + 2 < sizes.Length)
                layers.Add(($"act{i}", activation switch
                {
                    "tanh" => Tanh(),
                    "relu" => ReLU(),
                    "sigmoid" => Sigmoid(),
                    _ => throw new ArgumentException(activation),
                }));
        }
        return Sequential(layers);
    }

    public static Tensor Inputs(long m, long d, long seed = 1)
    {
        manual_seed(seed);
        return randn(m, d, dtype: ScalarType.Float64);
    }
}
