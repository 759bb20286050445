using NaturalGradient.Likelihoods;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Layers;

/// <summary>A small model with its batch: inputs, targets and likelihood.</summary>
public sealed record LayerCase(string Name, Module<Tensor, Tensor> Model, Tensor X, Tensor Y, ILikelihood Likelihood)
{
    public override string ToString() => Name;
}

/// <summary>The layer kinds and graph shapes under test, each a float64 case with m between 4 and 6.</summary>
public static class LayerCases
{
    public static readonly string[] Names =
    {
        "sequence", "sequence-pooled", "sequence-frozen-weight", "embedding", "layernorm", "layernorm-frozen-gamma",
        "batchnorm-eval", "siamese-residual", "tied-embedding-head", "tied-embedding-head-nobias", "tied-linears", "tied-embeddings", "tied-convs",
        "conv-same",
    };

    public static LayerCase Create(string name)
    {
        manual_seed(name.Length * 7919L + name[0]);
        var gaussian = new GaussianLikelihood();
        switch (name)
        {
            case "sequence":
                return new(name, new LayerModels.SequenceMlp(3, 4, 2), LayerModels.Normal(1, 5, 3, 3), LayerModels.Normal(2, 5, 6), gaussian);
            case "sequence-pooled":
                return new(name, new LayerModels.SequenceMlp(3, 4, 3, pool: true), LayerModels.Normal(3, 6, 4, 3),
                    LayerModels.Tokens(4, 6, 1, 3).squeeze(1), new CategoricalLikelihood());
            case "sequence-frozen-weight":
            {
                var model = new LayerModels.SequenceMlp(3, 4, 2);
                model.fc1.weight!.requires_grad = false;
                return new(name, model, LayerModels.Normal(5, 5, 3, 3), LayerModels.Normal(6, 5, 6), gaussian);
            }
            case "embedding":
                return new(name, new LayerModels.EmbeddingModel(7, 3, 4, 3), LayerModels.Tokens(7, 5, 4, 7),
                    LayerModels.Tokens(8, 5, 1, 3).squeeze(1), new CategoricalLikelihood());
            case "layernorm":
                return new(name, new LayerModels.LayerNormModel(3, 4, 2), LayerModels.Normal(9, 5, 3, 3), LayerModels.Normal(10, 5, 6), gaussian);
            case "layernorm-frozen-gamma":
            {
                var model = new LayerModels.LayerNormModel(3, 4, 2);
                model.ln.weight!.requires_grad = false;
                return new(name, model, LayerModels.Normal(11, 4, 3, 3), LayerModels.Normal(12, 4, 6), gaussian);
            }
            case "batchnorm-eval":
            {
                var model = new LayerModels.BatchNormModel(3, 4, 2);
                model.bn.eval();
                return new(name, model, LayerModels.Normal(13, 6, 3), LayerModels.Normal(14, 6, 2), gaussian);
            }
            case "siamese-residual":
                return new(name, new LayerModels.SiameseResidual(3, 4, 2), LayerModels.Normal(15, 5, 6), LayerModels.Normal(16, 5, 2), gaussian);
            case "tied-embedding-head":
                return new(name, new LayerModels.TiedEmbeddingHead(6, 3), LayerModels.Tokens(17, 5, 4, 6),
                    LayerModels.Tokens(18, 5, 1, 6).squeeze(1), new CategoricalLikelihood());
            case "tied-embedding-head-nobias":
                return new(name, new LayerModels.TiedEmbeddingHead(5, 3, headBias: false), LayerModels.Tokens(19, 4, 3, 5),
                    LayerModels.Tokens(20, 4, 1, 5).squeeze(1), new CategoricalLikelihood());
            case "tied-linears":
                return new(name, new LayerModels.TiedLinears(3, 2), LayerModels.Normal(21, 5, 3), LayerModels.Normal(22, 5, 2), gaussian);
            case "tied-embeddings":
                return new(name, new LayerModels.TiedEmbeddings(7, 3, 3), LayerModels.Tokens(23, 5, 4, 7),
                    LayerModels.Tokens(24, 5, 1, 3).squeeze(1), new CategoricalLikelihood());
            case "tied-convs":
                return new(name, new LayerModels.TiedConvs(2, 3, 2), LayerModels.Normal(25, 4, 2, 3, 3), LayerModels.Normal(26, 4, 2), gaussian);
            case "conv-same":
                return new(name, new LayerModels.SamePaddedConvs(2, 4, 2), LayerModels.Normal(27, 4, 2, 4, 4), LayerModels.Normal(28, 4, 2), gaussian);
            default:
                throw new ArgumentException(name);
        }
    }

    public static TheoryData<string> All()
    {
        var data = new TheoryData<string>();
        foreach (var n in Names) data.Add(n);
        return data;
    }
}
