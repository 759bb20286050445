using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Capture;

/// <summary>
/// The affine parameters of a normalisation layer, y = γ ∘ x̂ + β, with x̂ the normalised input: W̄ = [γ β]
/// (features × 2; one column when γ or β is frozen) and per-example gradients Σₜ [δᵢₜ ∘ x̂ᵢₜ, δᵢₜ] over the positions
/// that share γ and β (sequence positions for LayerNorm, pixels for BatchNorm). Not a Kronecker layer: K-FAC and
/// EKFAC give it a dense per-layer block, the other structures treat it like any block (docs/LAYERS.md).
/// </summary>
public abstract class AffineNormAdapter : LayerAdapterBase
{
    protected AffineNormAdapter(string name, nn.Module module, Parameter weight, Parameter? bias)
        : base(name, module, weight, bias, outputDim: weight.numel()) { }

    public override bool IsKronecker => false;

    /// <summary>Columns [Σₜ δ ∘ x̂ (γ trainable), Σₜ δ (β trainable)] from x̂ and δ (both n × T × features): n × features × in'.</summary>
    public override Tensor PerSampleGradients(Tensor activations, Tensor outputGradients)
    {
        var cols = new List<Tensor>(2);
        if (HasWeight) cols.Add((outputGradients * activations).sum(1));
        if (HasBias) cols.Add(outputGradients.sum(1));
        return stack(cols.ToArray(), 2);
    }
}

/// <summary>LayerNorm over the trailing normalized_shape: x̂ = (x − mean) / √(var + ε) per example and position.</summary>
public sealed class LayerNormAdapter : AffineNormAdapter
{
    private readonly LayerNorm _norm;

    public LayerNormAdapter(string name, LayerNorm module) : base(name, module, module.weight!, module.bias) => _norm = module;

    public override string KindName => "LayerNorm";

    public override Tensor Activations(Tensor input)
    {
        int k = _norm.normalized_shape.Length;
        long m = BatchSize(input, k + 1);
        var dims = Enumerable.Range((int)input.dim() - k, k).Select(d => (long)d).ToArray();
        // var_mean, not var(dims): TorchSharp 0.107's native var-along-dimensions also computes (and drops) the whole
        // tensor's variance, outside its error handling.
        var (variance, mean) = input.var_mean(dims, unbiased: false, keepdim: true);
        var xhat = (input - mean) / (variance + _norm.eps).sqrt();
        return xhat.reshape(m, -1, OutputDim);
    }

    public override Tensor OutputGradients(Tensor gradOutput) => gradOutput.reshape(gradOutput.size(0), -1, OutputDim);
}

/// <summary>
/// BatchNorm1d/2d/3d in eval mode with running statistics: x̂ = (x − running_mean) / √(running_var + ε) per channel,
/// the positions being the trailing (length or spatial) dimensions. In training mode (or without running statistics)
/// the layer normalises with the batch's own statistics, which couples the examples: <see cref="LayerCapture"/> refuses it.
/// </summary>
public sealed class BatchNormAdapter : AffineNormAdapter
{
    private readonly NormBase _norm;

    public BatchNormAdapter(string name, NormBase module) : base(name, module, module.weight!, module.bias) => _norm = module;

    public override string KindName => _norm.GetType().Name;

    /// <summary>True when the layer normalises with batch statistics (training mode, or no running statistics).</summary>
    public static bool CouplesExamples(NormBase norm) => norm.training || !norm.track_running_stats;

    public override Tensor Activations(Tensor input)
    {
        long m = BatchSize(input, 2);
        if (CouplesExamples(_norm))
            throw new BatchCouplingException(Name, KindName);
        var shape = new long[input.dim()];
        Array.Fill(shape, 1L);
        shape[1] = OutputDim;
        var xhat = (input - _norm.running_mean!.reshape(shape)) / (_norm.running_var!.reshape(shape) + _norm.eps).sqrt();
        return ChannelsLast(xhat, m);
    }

    public override Tensor OutputGradients(Tensor gradOutput) => ChannelsLast(gradOutput, gradOutput.size(0));

    private Tensor ChannelsLast(Tensor t, long m) =>
        t.dim() == 2 ? t.unsqueeze(1) : t.reshape(m, OutputDim, -1).transpose(1, 2);   // m × T × C
}
