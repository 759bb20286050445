using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Tests.Layers;

/// <summary>Small seeded float64 models, one per layer kind or graph shape, all with m × o outputs.</summary>
public static class LayerModels
{
    public const ScalarType F64 = ScalarType.Float64;

    /// <summary>Linear(d, h) on m × T × d → tanh → Linear(h, o) on m × T × h → flattened m × (T·o) (per-position outputs).</summary>
    public sealed class SequenceMlp : Module<Tensor, Tensor>
    {
        public readonly Linear fc1, fc2;
        private readonly bool _pool;
        public SequenceMlp(long d, long h, long o, bool pool = false, bool bias = true) : base("seq")
        {
            fc1 = Linear(d, h, hasBias: bias, dtype: F64);
            fc2 = Linear(h, o, hasBias: bias, dtype: F64);
            _pool = pool;
            RegisterComponents();
        }
        public override Tensor forward(Tensor x)
        {
            var y = fc2.call(tanh(fc1.call(x)));
            return _pool ? y.mean(new long[] { 1 }) : y.flatten(1);
        }
    }

    /// <summary>One Linear(d, o) on m × T × d with per-position outputs m × (T·o): K-FAC-expand is exact for its exact Fisher.</summary>
    public sealed class PositionwiseLinear : Module<Tensor, Tensor>
    {
        public readonly Linear fc;
        public PositionwiseLinear(long d, long o) : base("positionwise")
        {
            fc = Linear(d, o, dtype: F64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => fc.call(x).flatten(1);
    }

    /// <summary>One Linear(d, o) on m × T × d, mean-pooled to m × o: K-FAC-reduce is exact for m = 1 and position-constant inputs.</summary>
    public sealed class PooledLinear : Module<Tensor, Tensor>
    {
        public readonly Linear fc;
        public PooledLinear(long d, long o) : base("pooled")
        {
            fc = Linear(d, o, dtype: F64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => fc.call(x).mean(new long[] { 1 });
    }

    /// <summary>Embedding(V, d) on m × T tokens → Linear(d, h) → tanh → mean over T → Linear(h, o).</summary>
    public sealed class EmbeddingModel : Module<Tensor, Tensor>
    {
        public readonly Embedding emb;
        public readonly Linear fc1, fc2;
        public EmbeddingModel(long vocabulary, long d, long h, long o) : base("embedding")
        {
            emb = Embedding(vocabulary, d, dtype: F64);
            fc1 = Linear(d, h, dtype: F64);
            fc2 = Linear(h, o, dtype: F64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor tokens) => fc2.call(tanh(fc1.call(emb.call(tokens))).mean(new long[] { 1 }));
    }

    /// <summary>Linear(d, h) on m × T × d → LayerNorm(h) → tanh → Linear(h, o) → flattened m × (T·o).</summary>
    public sealed class LayerNormModel : Module<Tensor, Tensor>
    {
        public readonly Linear fc1, fc2;
        public readonly LayerNorm ln;
        public LayerNormModel(long d, long h, long o) : base("layernorm")
        {
            fc1 = Linear(d, h, dtype: F64);
            ln = LayerNorm(new[] { h }, dtype: F64);
            fc2 = Linear(h, o, dtype: F64);
            RegisterComponents();
            using var _ = no_grad();
            ln.weight!.normal_(1.0, 0.3);      // away from the initial γ = 1, β = 0
            ln.bias!.normal_(0.0, 0.3);
        }
        public override Tensor forward(Tensor x) => fc2.call(tanh(ln.call(fc1.call(x)))).flatten(1);
    }

    /// <summary>Linear(d, h) → BatchNorm1d(h) → tanh → Linear(h, o) on m × d inputs (running statistics randomised).</summary>
    public sealed class BatchNormModel : Module<Tensor, Tensor>
    {
        public readonly Linear fc1, fc2;
        public readonly BatchNorm1d bn;
        public BatchNormModel(long d, long h, long o) : base("batchnorm")
        {
            fc1 = Linear(d, h, dtype: F64);
            bn = BatchNorm1d(h, dtype: F64);
            fc2 = Linear(h, o, dtype: F64);
            RegisterComponents();
            using var _ = no_grad();
            bn.weight!.normal_(1.0, 0.3);
            bn.bias!.normal_(0.0, 0.3);
            bn.running_mean!.normal_(0.0, 0.5);
            bn.running_var!.uniform_(0.5, 2.0);
        }
        public override Tensor forward(Tensor x) => fc2.call(tanh(bn.call(fc1.call(x))));
    }

    /// <summary>
    /// Siamese: one encoder Linear(d, h) applied to both halves of an m × 2d input, tanh, summed, a residual block
    /// r = z + res(tanh(z)), then Linear(h, o). The encoder runs twice per forward (a shared layer).
    /// </summary>
    public sealed class SiameseResidual : Module<Tensor, Tensor>
    {
        public readonly Linear enc, res, head;
        private readonly long _d;
        public SiameseResidual(long d, long h, long o) : base("siamese")
        {
            _d = d;
            enc = Linear(d, h, dtype: F64);
            res = Linear(h, h, dtype: F64);
            head = Linear(h, o, dtype: F64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x)
        {
            var z = tanh(enc.call(x.narrow(1, 0, _d))) + tanh(enc.call(x.narrow(1, _d, _d)));
            var r = z + res.call(tanh(z));
            return head.call(r);
        }
    }

    /// <summary>
    /// A tied language model: Embedding(V, d) on m × T tokens → Linear(d, d) → tanh → mean over T → head Linear(d, V)
    /// whose weight IS the embedding table (weight tying across an Embedding and a Linear, transposed layouts).
    /// </summary>
    public sealed class TiedEmbeddingHead : Module<Tensor, Tensor>
    {
        public readonly Embedding emb;
        public readonly Linear mix, head;
        public TiedEmbeddingHead(long vocabulary, long d, bool headBias = true) : base("tied-embedding-head")
        {
            emb = Embedding(vocabulary, d, dtype: F64);
            mix = Linear(d, d, dtype: F64);
            head = Linear(d, vocabulary, hasBias: headBias, dtype: F64);
            RegisterComponents();
            head.weight = emb.weight!;
        }
        public override Tensor forward(Tensor tokens) => head.call(tanh(mix.call(emb.call(tokens))).mean(new long[] { 1 }));
    }

    /// <summary>Two Linear(d, d) modules with one weight and their own biases: b(tanh(a(x))) → Linear(d, o) (same layout).</summary>
    public sealed class TiedLinears : Module<Tensor, Tensor>
    {
        public readonly Linear a, b, out_;
        public TiedLinears(long d, long o) : base("tied-linears")
        {
            a = Linear(d, d, dtype: F64);
            b = Linear(d, d, dtype: F64);
            out_ = Linear(d, o, dtype: F64);
            RegisterComponents();
            b.weight = a.weight!;
        }
        public override Tensor forward(Tensor x) => out_.call(tanh(b.call(tanh(a.call(x)))));
    }

    /// <summary>Two Conv2d(c, c, 3, padding 1) modules with one kernel and their own biases: b(tanh(a(x))) → flatten → Linear(c·h·w, o).</summary>
    public sealed class TiedConvs : Module<Tensor, Tensor>
    {
        public readonly Conv2d a, b;
        public readonly Linear fc;
        public TiedConvs(long channels, long size, long o) : base("tied-convs")
        {
            a = Conv2d(channels, channels, 3, padding: 1, dtype: F64);
            b = Conv2d(channels, channels, 3, padding: 1, dtype: F64);
            fc = Linear(channels * size * size, o, dtype: F64);
            RegisterComponents();
            b.weight = a.weight!;
        }
        public override Tensor forward(Tensor x) => fc.call(tanh(b.call(tanh(a.call(x)))).flatten(1));
    }

    /// <summary>
    /// Two Conv2d(c, c, 3) with <c>Padding.Same</c> (the second dilated by 2, so padded by 2 on each side):
    /// b(tanh(a(x))) → flatten → Linear(c·h·w, o).
    /// </summary>
    public sealed class SamePaddedConvs : Module<Tensor, Tensor>
    {
        public readonly Conv2d a, b;
        public readonly Linear fc;
        public SamePaddedConvs(long channels, long size, long o) : base("conv-same")
        {
            a = Conv2d(channels, channels, 3, padding: Padding.Same, dtype: F64);
            b = Conv2d(channels, channels, 3, padding: Padding.Same, dilation: 2, dtype: F64);
            fc = Linear(channels * size * size, o, dtype: F64);
            RegisterComponents();
        }
        public override Tensor forward(Tensor x) => fc.call(tanh(b.call(tanh(a.call(x)))).flatten(1));
    }

    /// <summary>Two Embedding modules sharing one table (first and second half of the tokens) → sum → mean over T → Linear(d, o).</summary>
    public sealed class TiedEmbeddings : Module<Tensor, Tensor>
    {
        public readonly Embedding left, right;
        public readonly Linear fc;
        public TiedEmbeddings(long vocabulary, long d, long o) : base("tied-embeddings")
        {
            left = Embedding(vocabulary, d, dtype: F64);
            right = Embedding(vocabulary, d, dtype: F64);
            fc = Linear(d, o, dtype: F64);
            RegisterComponents();
            right.weight = left.weight!;
        }
        public override Tensor forward(Tensor tokens)
        {
            long half = tokens.shape[1] / 2;
            var h = left.call(tokens.narrow(1, 0, half)) + right.call(tokens.narrow(1, half, tokens.shape[1] - half));
            return fc.call(tanh(h).mean(new long[] { 1 }));
        }
    }

    /// <summary>Linear(4, 5) → tanh → Linear(5, 3) (issue 11 §1.1's frozen-tensor case).</summary>
    public static Sequential FrozenCaseMlp()
    {
        manual_seed(0);
        return Sequential(("fc1", Linear(4, 5, dtype: F64)), ("act", Tanh()), ("fc2", Linear(5, 3, dtype: F64)));
    }

    public static Tensor Normal(long seed, params long[] shape)
    {
        manual_seed(seed);
        return randn(shape, dtype: F64);
    }

    public static Tensor Tokens(long seed, long m, long t, long vocabulary)
    {
        manual_seed(seed);
        return randint(vocabulary, new[] { m, t }, dtype: ScalarType.Int64);
    }
}
