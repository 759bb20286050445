using NaturalGradient.Fisher;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// y = W a + b on m × d inputs (T = 1) or on m × T₁ × … × d inputs (sequences, T = T₁ ⋯): every leading dimension
/// after the first is a position, and ∇_W̄ ℓᵢ = Σₜ δᵢₜ āᵢₜᵀ sums over them (docs/LAYERS.md).
/// </summary>
public sealed class LinearAdapter : LayerAdapterBase
{
    public LinearAdapter(string name, Linear module) : base(name, module, module.weight!, module.bias) { }

    public override string KindName => "Linear";

    public override Tensor Activations(Tensor input)
    {
        var shape = InputShape(input, 2);
        var rows = Assemble(Rows(input, shape));
        return rows.reshape(shape[0], -1, rows.size(1));
    }

    /// <summary>A tensor of shape <paramref name="shape"/> (m × … × width) as (m·T) × width rows: itself when 2-D, else a view.</summary>
    private static Tensor Rows(Tensor t, long[] shape) => shape.Length == 2 ? t : t.reshape(-1, shape[^1]);

    public override Tensor OutputGradients(Tensor gradOutput)
    {
        var shape = gradOutput.Sizes();
        return gradOutput.reshape(shape[0], -1, shape[^1]);
    }

    /// <summary>
    /// The statistics of one call from its input (m × … × d) and the gradient at its output (m × … × out, already scaled
    /// as δ): Ā assembled as (m·T) × in' rows and D taken as (m·T) × out rows, kept as rows only
    /// (<see cref="LayerStatistics.KeptRows"/>; the m × T × in' and 1 × m × T × out tensors are views made when read).
    /// The same values as <see cref="Activations"/> and <see cref="OutputGradients"/> with a sample dimension, and the
    /// K-FAC, TENGraD and diagonal blocks take the rows without a view.
    /// </summary>
    internal LayerStatistics CallStatistics(Tensor input, Tensor outputGradient, double weight)
    {
        var shape = InputShape(input, 2);
        var activationRows = Assemble(Rows(input, shape));
        var gradientShape = outputGradient.Sizes();
        var gradientRows = Rows(outputGradient, gradientShape);
        return new LayerStatistics(this, activationRows, gradientRows, shape[0], weight);
    }
}
