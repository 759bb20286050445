using System.Globalization;

namespace NaturalGradient.Capture;

/// <summary>
/// A covered tensor receives gradient that its layer's recorded calls do not explain: it is also used outside the
/// module (a functional call such as <c>functional.linear(x, head.weight)</c>), or the module also ran through
/// <c>forward(x)</c>, which skips hooks. Its block would miss that contribution, so the step is refused.
/// </summary>
public sealed class TensorUsedOutsideLayerException : InvalidOperationException
{
    /// <param name="tensorName">Dotted parameter name.</param>
    /// <param name="layerName">The covered layer that holds it.</param>
    /// <param name="kind">The layer's kind.</param>
    /// <param name="relativeDifference">‖∇ − Σ recorded‖ of the tensor over ‖∇‖ + ‖Σ recorded‖ of its layer's tensors.</param>
    public TensorUsedOutsideLayerException(string tensorName, string layerName, string kind, double relativeDifference)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"tensor '{tensorName}' of layer '{layerName}' ({kind}) receives gradient that the layer's recorded calls do not give " +
            $"(relative difference {relativeDifference:G2}): it is also used outside the module (a functional call such as " +
            $"functional.linear(x, {tensorName})) or the module also runs through forward(x). Use the tensor through modules called " +
            $"with call(x) (a second module holding the same tensor is covered with it as a tied tensor), or exclude layer " +
            $"'{layerName}' with IncludeLayer (its tensors then keep their plain gradient)"))
    {
        TensorName = tensorName;
        LayerName = layerName;
    }

    public string TensorName { get; }
    public string LayerName { get; }
}
