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
        ExportState("", state);
        return state;
    }

    /// <summary>Restores a state from <see cref="state_dict"/>. On error nothing changes.</summary>
    /// <exception cref="InvalidDataException">The state belongs to another optimiser, damping schedule, structure or model, or is incomplete.</exception>
    public void load_state_dict(NaturalGradientStateDict state) => ImportState("", state);

    /// <summary>Writes the state of <see cref="state_dict"/> under keys starting with <paramref name="prefix"/>.</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        state.Texts[prefix + "optimizer"] = nameof(NaturalGradientDescent);
        state.Texts[prefix + "damping_schedule"] = Options.DampingSchedule.ToString();
        state.Numbers[prefix + "learning_rate"] = LearningRate;
        state.Numbers[prefix + "damping"] = _damping.Current;
        foreach (var (name, buffer) in _layerMomentum) state.SetTensor($"{prefix}momentum.layer.{name}", buffer);
        var names = ParameterNames();
        foreach (var (parameter, buffer) in _plainMomentum) state.SetTensor($"{prefix}momentum.parameter.{names[parameter.Handle]}", buffer);
        Preconditioner.ExportState(prefix + "preconditioner.", state);
    }

    /// <summary>Reads the state written by <see cref="ExportState"/> under <paramref name="prefix"/>. On error nothing changes.</summary>
    /// <exception cref="InvalidDataException">The state belongs to another optimiser, damping schedule, structure or model, or is incomplete.</exception>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.GetText(prefix + "optimizer") != nameof(NaturalGradientDescent))
            throw new InvalidDataException($"the state is for optimiser '{state.GetText(prefix + "optimizer")}', not {nameof(NaturalGradientDescent)}");
        if (state.GetText(prefix + "damping_schedule") != Options.DampingSchedule.ToString())
            throw new InvalidDataException($"the state is for damping schedule '{state.GetText(prefix + "damping_schedule")}', but this optimiser uses '{Options.DampingSchedule}'");
        Preconditioner.CheckState(prefix + "preconditioner.", state);
        double lr = state.GetNumber(prefix + "learning_rate");
        double damping = state.GetNumber(prefix + "damping");
        var covered = Preconditioner.Capture.Layers.ToDictionary(l => l.Adapter.Name, l => l.Adapter, StringComparer.Ordinal);
        var parameters = ParameterNames();
        var layerMomentum = new Dictionary<string, Tensor>();
        var plainMomentum = new Dictionary<Parameter, Tensor>(ReferenceEqualityComparer.Instance);
        try
        {
            string layerKey = prefix + "momentum.layer.", parameterKey = prefix + "momentum.parameter.";
            foreach (var key in state.Tensors.Keys)
            {
                if (key.StartsWith(layerKey, StringComparison.Ordinal))
                {
                    var name = key[layerKey.Length..];
                    if (!covered.TryGetValue(name, out var layer))
                        throw new InvalidDataException($"the state holds momentum for layer '{name}', which this model does not cover");
                    layerMomentum[name] = state.GetTensor(key, new[] { layer.OutputDim, layer.InputDim });
                }
                else if (key.StartsWith(parameterKey, StringComparison.Ordinal))
                {
                    var name = key[parameterKey.Length..];
                    var parameter = _uncovered.FirstOrDefault(p => parameters.TryGetValue(p.Handle, out var n) && n == name)
                        ?? throw new InvalidDataException($"the state holds momentum for parameter '{name}', which this optimiser does not update directly");
                    plainMomentum[parameter] = state.GetTensor(key, parameter.Sizes());
                }
            }
            Preconditioner.ImportState(prefix + "preconditioner.", state);
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
