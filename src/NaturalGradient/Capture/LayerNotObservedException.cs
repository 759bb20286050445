namespace NaturalGradient.Capture;

/// <summary>
/// A covered layer took part in the computation but its forward hook did not fire, so its curvature cannot be
/// captured. Usually a custom module calls <c>child.forward(x)</c>; <c>child.call(x)</c> runs the hooks.
/// </summary>
public sealed class LayerNotObservedException : InvalidOperationException
{
    public LayerNotObservedException(string layerName, string kind)
        : base($"layer '{layerName}' ({kind}) contributed to the loss but was not observed: its parent module calls " +
               $"{ShortName(layerName)}.forward(x), which skips forward hooks. Call {ShortName(layerName)}.call(x) instead " +
               "(nn.Sequential already does), or exclude the layer from the preconditioner.")
    {
        LayerName = layerName;
    }

    public string LayerName { get; }

    private static string ShortName(string path) => path.Contains('.') ? path[(path.LastIndexOf('.') + 1)..] : path;
}
