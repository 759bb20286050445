using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Sequential = TorchSharp.Modules.Sequential;

namespace NaturalGradient.Training.Models;

/// <summary>
/// Builds the networks of the experiments as <see cref="TorchSharp.Modules.Sequential"/> models, whose children are invoked
/// through <c>call(...)</c> so that forward hooks (and so <see cref="Capture.LayerCapture"/>) see every layer.
/// </summary>
/// <remarks>
/// Layer names: MLP <c>flatten</c> (only for multi-dimensional inputs), <c>fc0</c>, <c>act0</c>, <c>fc1</c>, …;
/// conv net <c>conv0</c>, <c>relu0</c>, <c>pool0</c>, <c>conv1</c>, <c>relu1</c>, <c>pool1</c>, <c>flatten</c>, <c>fc</c>.
/// Parameters are initialised from torch's global generator: seed it (<c>torch.manual_seed</c>) first.
/// </remarks>
public static class ModelFactory
{
    /// <summary>Channels of the two convolution stages of <see cref="ConvNet"/>.</summary>
    public static readonly (int First, int Second) ConvChannels = (16, 32);

    /// <summary>Builds the model that <paramref name="spec"/> describes.</summary>
    /// <param name="spec">Kind, hidden widths and activation.</param>
    /// <param name="inputShape">Shape of one example (no batch dimension).</param>
    /// <param name="outputs">Network outputs (classes or regression targets).</param>
    /// <param name="dtype">Parameter dtype (float32 or float64).</param>
    /// <exception cref="ArgumentOutOfRangeException">The spec is invalid or does not fit the input shape.</exception>
    public static Sequential Build(ModelSpec spec, long[] inputShape, long outputs, ScalarType dtype)
    {
        spec.ValidateFor(inputShape);
        return spec.Kind == ModelKind.Conv
            ? ConvNet(inputShape, outputs, dtype)
            : Mlp(inputShape, outputs, spec.Hidden.ToArray(), spec.Activation, dtype);
    }

    /// <summary>
    /// A fully connected network in → hidden[0] → … → outputs with <paramref name="act"/> between layers and none
    /// after the last. A <c>Flatten</c> comes first when an example has more than one dimension.
    /// </summary>
    /// <param name="inputShape">Shape of one example; its element count is the input width.</param>
    /// <param name="outputs">Width of the last layer (≥ 1).</param>
    /// <param name="hidden">Hidden widths (each ≥ 1); empty = a linear model.</param>
    /// <param name="act">Activation between layers.</param>
    /// <param name="dtype">Parameter dtype.</param>
    public static Sequential Mlp(long[] inputShape, long outputs, int[] hidden, Activation act, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(hidden);
        if (inputShape.Length == 0 || inputShape.Any(d => d < 1))
            throw new ArgumentOutOfRangeException(nameof(inputShape), $"input shape must be non-empty with positive sizes, got [{string.Join(", ", inputShape)}]");
        if (outputs < 1) throw new ArgumentOutOfRangeException(nameof(outputs), outputs, $"outputs must be ≥ 1, got {outputs}");
        if (hidden.Any(h => h < 1)) throw new ArgumentOutOfRangeException(nameof(hidden), $"hidden widths must be ≥ 1, got [{string.Join(",", hidden)}]");

        var layers = new List<(string, Module<Tensor, Tensor>)>();
        if (inputShape.Length > 1) layers.Add(("flatten", Flatten()));
        long width = inputShape.Aggregate(1L, (a, b) => a * b);
        var sizes = hidden.Select(h => (long)h).Append(outputs).ToArray();
        for (int i = 0; i < sizes.Length; i++)
        {
            layers.Add(($"fc{i}", Linear(width, sizes[i], hasBias: true, dtype: dtype)));
            if (i + 1 < sizes.Length) layers.Add(($"act{i}", CreateActivation(act)));
            width = sizes[i];
        }
        return Sequential(layers);
    }

    /// <summary>
    /// conv(5×5, pad 2) → relu → maxpool 2, twice (16 then 32 channels), then flatten and one linear layer to
    /// <paramref name="outputs"/>.
    /// </summary>
    /// <param name="inputShape">c × h × w of one example (h, w ≥ 4).</param>
    /// <param name="outputs">Width of the read-out layer (≥ 1).</param>
    /// <param name="dtype">Parameter dtype.</param>
    public static Sequential ConvNet(long[] inputShape, long outputs, ScalarType dtype)
    {
        ArgumentNullException.ThrowIfNull(inputShape);
        if (!IsImageShape(inputShape))
            throw new ArgumentOutOfRangeException(nameof(inputShape), $"conv net needs a c×h×w input shape with h, w ≥ 4, got [{string.Join(", ", inputShape)}]");
        if (outputs < 1) throw new ArgumentOutOfRangeException(nameof(outputs), outputs, $"outputs must be ≥ 1, got {outputs}");
        // Before any convolution runs, whatever optimiser trains the net (compare runs SGD and Adam in the same process).
        NaturalGradient.Numerics.OneDnnIsaCap.ForConvolutions();
        long c = inputShape[0], h = inputShape[1] / 2 / 2, w = inputShape[2] / 2 / 2;
        var (c1, c2) = ConvChannels;
        return Sequential(new (string, Module<Tensor, Tensor>)[]
        {
            ("conv0", Conv2d(c, c1, 5, padding: 2, dtype: dtype)),
            ("relu0", ReLU()),
            ("pool0", MaxPool2d(2)),
            ("conv1", Conv2d(c1, c2, 5, padding: 2, dtype: dtype)),
            ("relu1", ReLU()),
            ("pool1", MaxPool2d(2)),
            ("flatten", Flatten()),
            ("fc", Linear(c2 * h * w, outputs, hasBias: true, dtype: dtype)),
        });
    }

    /// <summary>True for c × h × w shapes that survive two 2×2 poolings (h, w ≥ 4).</summary>
    public static bool IsImageShape(long[] inputShape) =>
        inputShape.Length == 3 && inputShape[0] >= 1 && inputShape[1] >= 4 && inputShape[2] >= 4;

    /// <summary>Number of trainable scalar parameters of <paramref name="model"/>.</summary>
    public static long ParameterCount(Module model) =>
        model.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    private static Module<Tensor, Tensor> CreateActivation(Activation act) => act switch
    {
        Activation.Tanh => Tanh(),
        Activation.Relu => ReLU(),
        Activation.Sigmoid => Sigmoid(),
        _ => throw new ArgumentOutOfRangeException(nameof(act), act, "unknown activation"),
    };
}
