using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace TransformerBlock;

/// <summary>
/// One pre-LayerNorm-free transformer block for sequence classification: token embedding → single-head self-attention
/// (q, k, v, o projections: Linear layers on m × T × d) with a residual and LayerNorm → MLP (d → 2d → d, GELU) with a
/// residual and LayerNorm → mean over positions → Linear classifier. Every parameter belongs to a covered layer.
/// </summary>
public sealed class TransformerClassifier : Module<Tensor, Tensor>
{
    public readonly Embedding emb;
    public readonly Linear q, k, v, o, fc1, fc2, head;
    public readonly LayerNorm ln1, ln2;
    private readonly double _scale;

    /// <param name="vocabulary">Number of tokens V.</param>
    /// <param name="width">Model width d.</param>
    /// <param name="classes">Number of classes.</param>
    /// <param name="dtype">Parameter dtype.</param>
    public TransformerClassifier(long vocabulary, long width, long classes, ScalarType dtype = ScalarType.Float32) : base("transformer")
    {
        emb = Embedding(vocabulary, width, dtype: dtype);
        q = Linear(width, width, dtype: dtype);
        k = Linear(width, width, dtype: dtype);
        v = Linear(width, width, dtype: dtype);
        o = Linear(width, width, dtype: dtype);
        ln1 = LayerNorm(new[] { width }, dtype: dtype);
        fc1 = Linear(width, 2 * width, dtype: dtype);
        fc2 = Linear(2 * width, width, dtype: dtype);
        ln2 = LayerNorm(new[] { width }, dtype: dtype);
        head = Linear(width, classes, dtype: dtype);
        _scale = 1.0 / Math.Sqrt(width);
        RegisterComponents();
    }

    /// <param name="tokens">m × T token indices (int64).</param>
    /// <returns>m × classes logits.</returns>
    public override Tensor forward(Tensor tokens)
    {
        var h = emb.call(tokens);                                                    // m × T × d
        var scores = q.call(h).bmm(k.call(h).transpose(1, 2)).mul(_scale);         // m × T × T
        var attended = functional.softmax(scores, -1).bmm(v.call(h));               // m × T × d
        h = ln1.call(h + o.call(attended));
        h = ln2.call(h + fc2.call(functional.gelu(fc1.call(h))));
        return head.call(h.mean(new long[] { 1 }));
    }
}
