using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace NaturalGradient.Capture;

/// <summary>Shared parts of adapters whose parameters are a weight (out × …) and an optional bias (out).</summary>
public abstract class LayerAdapterBase : ILayerAdapter
{
    protected LayerAdapterBase(string name, Module module, Parameter weight, Parameter? bias)
    {
        Name = name;
        Module = module;
        Weight = weight;
        Bias = bias;
        OutputDim = weight.shape[0];
        InputDim = weight.numel() / OutputDim + (bias is null ? 0 : 1);
        Parameters = bias is null ? new[] { weight } : new[] { weight, bias };
    }

    public string Name { get; }
    public abstract string KindName { get; }
    public Module Module { get; }
    protected Parameter Weight { get; }
    protected Parameter? Bias { get; }
    public bool HasBias => Bias is not null;
    public long InputDim { get; }
    public long OutputDim { get; }
    public abstract bool IsDense { get; }
    public IReadOnlyList<Parameter> Parameters { get; }

    public abstract Tensor Activations(Tensor input);
    public abstract Tensor OutputGradients(Tensor gradOutput);

    /// <summary>Appends the bias column of ones to the last dimension when the layer has a bias.</summary>
    protected Tensor WithBiasColumn(Tensor a)
    {
        if (Bias is null) return a;
        var shape = a.shape.ToArray();
        shape[^1] = 1;
        return cat(new[] { a, ones(shape, dtype: a.dtype, device: a.device) }, -1);
    }

    public Tensor GradientMatrix()
    {
        using var _ = no_grad();
        var w = Weight.grad is null ? zeros_like(Weight) : Weight.grad;
        var wMat = w.reshape(OutputDim, -1);
        if (Bias is null) return wMat.clone();
        var b = Bias.grad is null ? zeros_like(Bias) : Bias.grad;
        return cat(new[] { wMat, b.unsqueeze(1) }, 1);
    }

    public void WriteGradientMatrix(Tensor g)
    {
        using var _ = no_grad();
        long weightCols = Bias is null ? InputDim : InputDim - 1;
        var wPart = g.narrow(1, 0, weightCols).reshape(Weight.shape).to_type(Weight.dtype);
        SetGrad(Weight, wPart);
        if (Bias is not null) SetGrad(Bias, g.select(1, InputDim - 1).to_type(Bias.dtype));
    }

    private static void SetGrad(Parameter p, Tensor value)
    {
        if (p.grad is null)
            p.grad = value.clone().DetachFromDisposeScope();
        else
            p.grad.copy_(value);
    }

    public void AddToWeights(Tensor update)
    {
        using var _ = no_grad();
        long weightCols = Bias is null ? InputDim : InputDim - 1;
        Weight.add_(update.narrow(1, 0, weightCols).reshape(Weight.shape).to_type(Weight.dtype));
        if (Bias is not null) Bias.add_(update.select(1, InputDim - 1).to_type(Bias.dtype));
    }

    public Tensor WeightMatrix()
    {
        using var _ = no_grad();
        var wMat = Weight.detach().reshape(OutputDim, -1);
        return Bias is null ? wMat.clone() : cat(new[] { wMat, Bias.detach().unsqueeze(1) }, 1);
    }
}
