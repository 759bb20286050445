using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ConvNetSample;

/// <summary>
/// A small convolutional classifier written as a custom Module: Conv2d(1→8, 3×3, padding 1) → ReLU →
/// 2×2 max-pool → Conv2d(8→8, 3×3, padding 1) → ReLU → flatten → Linear(8·4·4 → 4).
/// Children are invoked with call(...), never forward(...): call runs the forward hooks the preconditioner
/// uses to see each layer's input and output.
/// </summary>
public sealed class BarsNet : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv1 = nn.Conv2d(1, 8, 3, padding: 1);
    private readonly Conv2d conv2 = nn.Conv2d(8, 8, 3, padding: 1);
    private readonly Linear head = nn.Linear(8 * 4 * 4, Bars.Classes);

    public BarsNet() : base(nameof(BarsNet)) => RegisterComponents();

    public override Tensor forward(Tensor x)
    {
        var h = nn.functional.relu(conv1.call(x));
        h = nn.functional.max_pool2d(h, 2);
        h = nn.functional.relu(conv2.call(h));
        return head.call(h.flatten(1));
    }
}

/// <summary>8×8 grey images of one bar (horizontal, vertical, diagonal or anti-diagonal) at a random place, plus noise.</summary>
public static class Bars
{
    public const int Classes = 4;
    public const int Size = 8;

    /// <summary>Images (n × 1 × 8 × 8, float32) and labels (n, int64), drawn from <paramref name="generator"/>.</summary>
    public static (Tensor Images, Tensor Labels) Make(int n, Generator generator)
    {
        var pixels = new float[n * Size * Size];
        var labels = torch.randint(0, Classes, new long[] { n }, generator: generator);
        var offsets = torch.randint(1, Size - 1, new long[] { n }, generator: generator);
        for (int i = 0; i < n; i++)
        {
            long label = labels[i].ToInt64(), o = offsets[i].ToInt64();
            for (int k = 0; k < Size; k++)
            {
                (long row, long col) = label switch
                {
                    0 => (o, (long)k),                // horizontal
                    1 => ((long)k, o),                // vertical
                    2 => ((long)k, (long)k),          // diagonal
                    _ => ((long)k, (long)(Size - 1 - k)), // anti-diagonal
                };
                pixels[((i * Size) + row) * Size + col] = 1f;
            }
        }
        var images = torch.tensor(pixels).reshape(n, 1, Size, Size);
        images += 0.3f * torch.randn(images.shape, generator: generator);
        return (images, labels);
    }
}
