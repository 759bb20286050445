using static TorchSharp.torch;

namespace NaturalGradient;

/// <summary>Detaching only what has a graph.</summary>
internal static class GraphFree
{
    /// <summary>
    /// <paramref name="t"/> itself when it does not require grad (then it has no graph to cut: statistics from .grad,
    /// recorded inputs, gradient matrices), else <c>t.detach()</c>. Saves a native handle per call where
    /// <c>detach()</c> would only alias.
    /// </summary>
    public static Tensor NoGraph(this Tensor t) => t.requires_grad ? t.detach() : t;
}
