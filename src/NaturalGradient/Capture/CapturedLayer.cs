using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>One covered layer and what its forward hook recorded in the current forward pass.</summary>
public sealed class CapturedLayer
{
    internal CapturedLayer(ILayerAdapter adapter) => Adapter = adapter;

    public ILayerAdapter Adapter { get; }
    public string Name => Adapter.Name;

    /// <summary>The layer input of the last recorded call, detached.</summary>
    public Tensor? Input { get; private set; }

    /// <summary>The layer output of the last recorded call (an alias kept in the autograd graph).</summary>
    public Tensor? Output { get; private set; }

    /// <summary>How many times the layer ran since the last <see cref="LayerCapture.Clear"/>.</summary>
    public int CallCount { get; private set; }

    public bool IsRecorded => CallCount == 1 && Output is not null;

    internal void Record(Tensor input, Tensor output)
    {
        CallCount++;
        // nn.Sequential disposes intermediate outputs after use: keep second handles to the same storage.
        Input = input.detach();
        Output = output.alias();
    }

    internal void Clear()
    {
        Input = null;
        Output = null;
        CallCount = 0;
    }
}
