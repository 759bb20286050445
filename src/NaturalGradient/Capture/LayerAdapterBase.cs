using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>
/// Shared parts of adapters whose parameters are a weight (out × …) and an optional bias (out), with
/// W̄ = [weight.reshape(out, −1) bias] restricted to the trainable tensors: a frozen weight drops its columns
/// (W̄ = [b], ā = the column of ones), a frozen bias drops the last column.
/// </summary>
public abstract class LayerAdapterBase : ILayerAdapter
{
    /// <param name="name">Dotted module path.</param>
    /// <param name="module">The module.</param>
    /// <param name="weight">The weight; its first dimension is the output unless <paramref name="outputDim"/> is given.</param>
    /// <param name="bias">The bias (OutputDim entries) or null.</param>
    /// <param name="outputDim">Rows of W̄ when they are not weight.shape[0] (e.g. LayerNorm's γ of any shape).</param>
    protected LayerAdapterBase(string name, Module module, Parameter weight, Parameter? bias, long? outputDim = null)
    {
        Name = name;
        Module = module;
        Weight = weight.requires_grad ? weight : null;
        Bias = bias is { requires_grad: true } ? bias : null;
        OutputDim = outputDim ?? weight.size(0);
        WeightColumns = Weight is null ? 0 : weight.numel() / OutputDim;
        InputDim = WeightColumns + (Bias is null ? 0 : 1);
        _weightShape = Weight?.Sizes();
        _weightIsMatrix = _weightShape is { Length: 2 } ws && ws[0] == OutputDim && ws[1] == WeightColumns;
        _biasShape = Bias?.Sizes();
        var ps = new List<Parameter>(2);
        if (Weight is not null) ps.Add(Weight);
        if (Bias is not null) ps.Add(Bias);
        Parameters = ps;
    }

    // Parameter shapes, fixed for the adapter's life (as OutputDim and WeightColumns are): no native call per step, and
    // no reshape when a part of W̄ already has its parameter's shape.
    private readonly long[]? _weightShape, _biasShape;
    private readonly bool _weightIsMatrix;

    public string Name { get; }
    public abstract string KindName { get; }
    public Module Module { get; }

    /// <summary>The covered weight, or null when it is frozen.</summary>
    protected Parameter? Weight { get; }

    /// <summary>The covered bias, or null when there is none or it is frozen.</summary>
    protected Parameter? Bias { get; }

    /// <summary>Columns of W̄ that belong to the weight (0 when it is frozen).</summary>
    protected long WeightColumns { get; }

    public bool HasBias => Bias is not null;
    public bool HasWeight => Weight is not null;
    public long InputDim { get; }
    public long OutputDim { get; }
    public virtual bool IsKronecker => true;
    public IReadOnlyList<Parameter> Parameters { get; }

    public abstract Tensor Activations(Tensor input);
    public abstract Tensor OutputGradients(Tensor gradOutput);

    /// <summary>gᵢ = Σₜ δᵢₜ āᵢₜᵀ by one batched matmul: n × out × in'.</summary>
    public virtual Tensor PerSampleGradients(Tensor activations, Tensor outputGradients) =>
        outputGradients.transpose(1, 2).bmm(activations);

    /// <summary>
    /// ā for W̄'s columns from the layer's input features <paramref name="a"/> (m × T × features): the features when the
    /// weight is trainable, then a column of ones when the bias is; only the ones when the weight is frozen.
    /// </summary>
    protected Tensor Assemble(Tensor a)
    {
        if (Weight is null)
        {
            var shape = a.Sizes();
            shape[^1] = 1;
            return ones(shape, dtype: a.dtype, device: a.device);
        }
        if (Bias is null) return a;
        // [a 1]: a small Ā by one constant pad (one native result); a large one as one copy of a and a fill of the last
        // column, since the pad writes the whole output with ones before copying a into it (an extra pass over Ā).
        if (a.numel() < PadMaximum) return functional.pad(a, new long[] { 0, 1 }, PaddingModes.Constant, 1.0);
        var size = a.Sizes();
        long features = size[^1];
        size[^1] = features + 1;
        var abar = empty(size, dtype: a.dtype, device: a.device);
        abar.narrow(-1, 0, features).copy_(a);
        abar.narrow(-1, features, 1).fill_(1.0);
        return abar;
    }

    /// <summary>
    /// Inputs below this many entries are assembled into Ā by a constant pad (one native call, one result) instead of an
    /// uninitialised Ā, a copy and a fill (three native results): at that size a native result costs more than the pad's
    /// extra pass. ATen's grain size, below which element-wise kernels run on one thread.
    /// </summary>
    internal const long PadMaximum = 32768;

    public virtual IReadOnlyList<Tensor> SplitMatrix(Tensor matrix)
    {
        var parts = new List<Tensor>(2);
        if (Weight is not null)
        {
            var columns = matrix.narrow(1, 0, WeightColumns);
            parts.Add(_weightIsMatrix ? columns : columns.reshape(_weightShape!));
        }
        if (Bias is not null)
        {
            var column = matrix.select(1, InputDim - 1);
            parts.Add(_biasShape!.Length == 1 ? column : column.reshape(_biasShape));
        }
        return parts;
    }

    public virtual Tensor JoinMatrix(IReadOnlyList<Tensor> perParameter)
    {
        var cols = new List<Tensor>(2);
        int k = 0;
        if (Weight is not null) cols.Add(_weightIsMatrix ? perParameter[k++] : perParameter[k++].reshape(OutputDim, WeightColumns));
        if (Bias is not null) cols.Add(perParameter[k].reshape(OutputDim, 1));
        return cols.Count == 1 ? cols[0].clone() : cat(cols.ToArray(), 1);
    }

    public Tensor GradientMatrix() => ParameterMatrix.Gradient(this);

    public void WriteGradientMatrix(Tensor g) => ParameterMatrix.WriteGradient(this, g);

    public void AddToWeights(Tensor update, double alpha = 1) => ParameterMatrix.AddToWeights(this, update, alpha);

    public Tensor WeightMatrix() => ParameterMatrix.Weights(this);

    /// <summary>m of a recorded call (its first dimension); inputs without a batch dimension are refused.</summary>
    protected long BatchSize(Tensor input, long minDims) => InputShape(input, minDims)[0];

    /// <summary>The shape of a recorded call's input (one native read), refused when it has fewer than <paramref name="minDims"/> dimensions.</summary>
    protected long[] InputShape(Tensor input, long minDims)
    {
        var shape = input.Sizes();
        if (shape.Length < minDims)
            throw new NotSupportedException(
                $"layer '{Name}' ({KindName}) received a {shape.Length}-D input [{string.Join(", ", shape)}]; " +
                $"NaturalGradient needs a batch dimension first (at least {minDims}-D)");
        return shape;
    }
}
