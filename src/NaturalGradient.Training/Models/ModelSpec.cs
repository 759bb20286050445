namespace NaturalGradient.Training.Models;

/// <summary>Non-linearity between the hidden layers of an MLP.</summary>
public enum Activation
{
    /// <summary>Hyperbolic tangent (the seeds' default).</summary>
    Tanh,
    /// <summary>Rectified linear unit max(0, x).</summary>
    Relu,
    /// <summary>Logistic sigmoid 1 / (1 + e⁻ˣ).</summary>
    Sigmoid,
}

/// <summary>Which network family <see cref="ModelFactory.Build"/> creates.</summary>
public enum ModelKind
{
    /// <summary>Fully connected network (<see cref="ModelFactory.Mlp"/>); any input shape (flattened).</summary>
    Mlp,
    /// <summary>Two conv–relu–maxpool stages and a linear read-out (<see cref="ModelFactory.ConvNet"/>); image inputs c × h × w.</summary>
    Conv,
}

/// <summary>What network to build; the input and output sizes come from the data set.</summary>
public sealed record ModelSpec
{
    /// <summary>Network family; default <see cref="ModelKind.Mlp"/>.</summary>
    public ModelKind Kind { get; init; } = ModelKind.Mlp;

    /// <summary>Hidden layer widths of the MLP, input side first; empty = a linear model. Default [32].</summary>
    public IReadOnlyList<int> Hidden { get; init; } = new[] { 32 };

    /// <summary>Activation between MLP layers; default <see cref="Activation.Tanh"/>.</summary>
    public Activation Activation { get; init; } = Activation.Tanh;

    /// <summary>Checks the values that do not depend on the data.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An invalid value; the parameter name is the property's.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Kind))
            throw new ArgumentOutOfRangeException(nameof(Kind), Kind, $"{nameof(Kind)} must be one of mlp, conv, got {Kind}");
        if (!Enum.IsDefined(Activation))
            throw new ArgumentOutOfRangeException(nameof(Activation), Activation, $"{nameof(Activation)} must be one of tanh, relu, sigmoid, got {Activation}");
        foreach (var h in Hidden)
            if (h < 1)
                throw new ArgumentOutOfRangeException(nameof(Hidden), h, $"{nameof(Hidden)} widths must be ≥ 1, got {h}");
    }

    /// <summary>Checks that this kind of model can take inputs of <paramref name="inputShape"/> (one example, no batch dimension).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="ModelKind.Conv"/> with an input that is not c × h × w (h, w ≥ 4).</exception>
    public void ValidateFor(long[] inputShape)
    {
        Validate();
        if (Kind == ModelKind.Conv && !ModelFactory.IsImageShape(inputShape))
            throw new ArgumentOutOfRangeException(nameof(Kind), Kind,
                $"{nameof(Kind)} conv needs image inputs c×h×w with h, w ≥ 4, but the data have input shape [{string.Join(", ", inputShape)}]");
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Kind.ToString().ToLowerInvariant()}(hidden=[{string.Join(",", Hidden)}], activation={Activation.ToString().ToLowerInvariant()})";
}
