using NaturalGradient.Damping;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NaturalGradient.Optim;

public sealed partial class NaturalGradientDescent
{
    /// <summary>
    /// The optimiser's state, TorchSharp-optimiser style: learning rate, the damping policy's λ, the momentum
    /// buffers (per covered layer and per uncovered parameter, by name) and the preconditioner's state (under
    /// <c>preconditioner.</c>). Loading it into an optimiser built the same way over the same model continues the
    /// run exactly. The caller owns the result.
    /// </summary>
    public NaturalGradientStateDict state_dict()
    {
        var state = new NaturalGradientStateDict();
        state.Texts["optimizer"] = nameof(NaturalGradientDescent);
        state.Texts["damping_schedule"] = Options.DampingSchedule.ToString();
        state.Numbers["learning_rate"] = LearningRate;
        state.Numbers["damping"] = _damping.Current;
        foreach (var (name, buffer) in _layerMomentum) state.SetTensor($"momentum.layer.{name}", buffer);
        var names = ParameterNames();
        foreach (var (parameter, buffer) in _plainMomentum) state.SetTensor($"momentum.parameter.{names[parameter.Handle]}", buffer);
        Preconditioner.ExportState("preconditioner.", state);
        return state;
    }

    /// <summary>Restores a state from <see cref="state_dict"/>. On error nothing changes.</summary>
    /// <exception cref="InvalidDataException">The state belongs to another optimiser, damping schedule, structure or model, or is incomplete.</exception>
    public void load_state_dict(NaturalGradientStateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.GetText("optimizer") != nameof(NaturalGradientDescent))
            throw new InvalidDataException($"the state is for optimiser '{state.GetText("optimizer")}', not {nameof(NaturalGradientDescent)}");
        if (state.GetText("damping_schedule") != Options.DampingSchedule.ToString())
            throw new InvalidDataException($"the state is for damping schedule '{state.GetText("damping_schedule")}', but this optimiser uses '{Options.DampingSchedule}'");
        Preconditioner.CheckState("preconditioner.", state);
        double lr = state.GetNumber("learning_rate");
        double damping = state.GetNumber("damping");
        var covered = Preconditioner.Capture.Layers.ToDictionary(l => l.Adapter.Name, l => l.Adapter, StringComparer.Ordinal);
        var parameters = ParameterNames();
        var layerMomentum = new Dictionary<string, Tensor>();
        var plainMomentum = new Dictionary<Parameter, Tensor>(ReferenceEqualityComparer.Instance);
        try
        {
            foreach (var key in state.Tensors.Keys)
            {
                if (key.StartsWith("momentum.layer.", StringComparison.Ordinal))
                {
                    var name = key["momentum.layer.".Length..];
                    if (!covered.TryGetValue(name, out var layer))
                        throw new InvalidDataException($"the state holds momentum for layer '{name}', which this model does not cover");
                    layerMomentum[name] = state.GetTensor(key, new[] { layer.OutputDim, layer.InputDim });
                }
                else if (key.StartsWith("momentum.parameter.", StringComparison.Ordinal))
                {
                    var name = key["momentum.parameter.".Length..];
                    var parameter = _uncovered.FirstOrDefault(p => parameters.TryGetValue(p.Handle, out var n) && n == name)
                        ?? throw new InvalidDataException($"the state holds momentum for parameter '{name}', which this optimiser does not update directly");
                    plainMomentum[parameter] = state.GetTensor(key, parameter.shape);
                }
            }
            Preconditioner.ImportState("preconditioner.", state);
        }
        catch
        {
            foreach (var t in layerMomentum.Values) t.Dispose();
            foreach (var t in plainMomentum.Values) t.Dispose();
            throw;
        }
        foreach (var t in _layerMomentum.Values) t.Dispose();
        foreach (var t in _plainMomentum.Values) t.Dispose();
        _layerMomentum.Clear();
        _plainMomentum.Clear();
        foreach (var (k, v) in layerMomentum) _layerMomentum[k] = v;
        foreach (var (k, v) in plainMomentum) _plainMomentum[k] = v;
        LearningRate = lr;
        if (_damping is LevenbergMarquardtDamping lm) lm.Reset(damping);
    }

    /// <summary>The model's parameter names by native handle.</summary>
    private Dictionary<IntPtr, string> ParameterNames()
    {
        var names = new Dictionary<IntPtr, string>();
        foreach (var (name, p) in _model.named_parameters()) names[p.Handle] = name;
        return names;
    }
}
