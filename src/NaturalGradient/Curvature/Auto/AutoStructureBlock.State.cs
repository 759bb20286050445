using NaturalGradient.Capture;
using NaturalGradient.Curvature.Blocks;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.Auto;

public sealed partial class AutoStructureBlock : ICurvatureBlockState
{
    /// <summary>
    /// Writes the decision (the shapes and predicted costs it was made from, and the choice) and, for a K-FAC block, its
    /// state (<see cref="KfacBlock.ExportState"/>, under <c>{prefix}kfac.</c>); a TENGraD block is rebuilt from each
    /// step's statistics and has none.
    /// </summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        state.Numbers[prefix + "chosen"] = Choice is null ? 0 : 1;
        if (Choice is not { } c) return;
        state.Numbers[prefix + "samples"] = c.Samples;
        state.Numbers[prefix + "positions"] = c.Positions;
        state.Numbers[prefix + "input_dim"] = c.InputDim;
        state.Numbers[prefix + "output_dim"] = c.OutputDim;
        state.Numbers[prefix + "tengrad_flops"] = c.TengradFlops;
        state.Numbers[prefix + "kfac_flops"] = c.KfacFlops;
        state.Numbers[prefix + "choice"] = (int)c.Choice;
        state.Numbers[prefix + "inner_kfac"] = _inner is KfacBlock ? 1 : 0;
        if (_inner is KfacBlock kfac) kfac.ExportState(prefix + "kfac.", state);
    }

    /// <summary>Restores the decision and the block it chose (reported again through the decision callback).</summary>
    /// <exception cref="InvalidDataException">A key is missing, the decision is for other layer shapes, or the K-FAC state does not fit.</exception>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        if (state.GetNumber(prefix + "chosen") == 0)
        {
            _inner?.Dispose();
            _inner = null;
            Choice = null;
            return;
        }
        long inputs = checked((long)state.GetNumber(prefix + "input_dim")), outputs = checked((long)state.GetNumber(prefix + "output_dim"));
        if (inputs != _layer.InputDim || outputs != _layer.OutputDim)
            throw new InvalidDataException(
                $"the state's auto decision for layer '{_layer.Name}' is for in' = {inputs}, out = {outputs}; the layer has in' = {_layer.InputDim}, out = {_layer.OutputDim}");
        int choice = checked((int)state.GetNumber(prefix + "choice"));
        if (!Enum.IsDefined((LayerStructure)choice))
            throw new InvalidDataException($"the state's auto decision for layer '{_layer.Name}' names no structure ({choice})");
        var decision = new LayerStructureChoice(_layer.Name, checked((long)state.GetNumber(prefix + "samples")), checked((long)state.GetNumber(prefix + "positions")),
            inputs, outputs, state.GetNumber(prefix + "tengrad_flops"), state.GetNumber(prefix + "kfac_flops"), (LayerStructure)choice);
        ICurvatureBlock inner;
        if (state.GetNumber(prefix + "inner_kfac") != 0)
        {
            var kfac = new KfacBlock(_layer, _kfac);
            try { kfac.ImportState(prefix + "kfac.", state); }
            catch { kfac.Dispose(); throw; }
            inner = kfac;
        }
        else
        {
            inner = new TengradBlock(_form);
        }
        _inner?.Dispose();
        _inner = inner;
        Choice = decision;
        _chosen?.Invoke(decision);
    }
}
