using NaturalGradient.Curvature;
using NaturalGradient.Optim;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Preconditioning;

public sealed partial class NaturalGradientPreconditioner
{
    /// <summary>
    /// The preconditioner's state, TorchSharp-optimiser style: the structure and covered layers (checked on load),
    /// the metric-collection count, λ, the Monte-Carlo generator's state and the curvature's long-lived state
    /// (Kronecker factors, eigenbases or inverses, EKFAC scalings, Hessian-free warm start). The caller owns the result.
    /// </summary>
    public NaturalGradientStateDict state_dict()
    {
        var state = new NaturalGradientStateDict();
        ExportState("", state);
        return state;
    }

    /// <summary>Restores a state from <see cref="state_dict"/>: the following steps are those the saved preconditioner would have taken.</summary>
    /// <exception cref="InvalidDataException">The state belongs to another structure or model, or is incomplete.</exception>
    public void load_state_dict(NaturalGradientStateDict state) => ImportState("", state);

    /// <summary>Writes the state under keys starting with <paramref name="prefix"/>.</summary>
    public void ExportState(string prefix, NaturalGradientStateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        state.Texts[prefix + "structure"] = Options.Structure.ToString();
        state.Texts[prefix + "fisher"] = Options.Fisher.ToString();
        state.Texts[prefix + "layers"] = LayerSignature();
        state.Numbers[prefix + "step_count"] = StepCount;
        state.Numbers[prefix + "damping"] = Damping;
        using (var generatorState = _generator.get_state()) state.SetTensor(prefix + "generator", generatorState);
        state.Numbers[prefix + "curvature_saved"] = CurvatureStateSaved ? 1 : 0;
        if (Curvature is ICurvatureState curvature) curvature.ExportState(prefix + "curvature.", state);
    }

    /// <summary>
    /// True when the state holds everything the curvature carries across steps: it exports its state, or it is
    /// rebuilt from each step's statistics (exact, block, diagonal, TENGraD).
    /// </summary>
    private bool CurvatureStateSaved => Curvature is ICurvatureState
        || Options.Structure is CurvatureStructure.Exact or CurvatureStructure.BlockDiagonal or CurvatureStructure.Diagonal or CurvatureStructure.Tengrad;

    /// <summary>Reads the state written by <see cref="ExportState"/> under <paramref name="prefix"/>; on error nothing changes.</summary>
    /// <exception cref="InvalidDataException">The state belongs to another structure, Fisher or model, is incomplete, or its
    /// generator state is not one (element type, shape: <see cref="GeneratorState"/>).</exception>
    public void ImportState(string prefix, NaturalGradientStateDict state)
    {
        CheckState(prefix, state);
        long steps = checked((long)state.GetNumber(prefix + "step_count"));
        double damping = state.GetNumber(prefix + "damping");
        using var generatorState = state.GetTensor(prefix + "generator");
        GeneratorState.Check(_generator, generatorState, $"state tensor '{prefix}generator'");
        if (Curvature is ICurvatureState curvature)
            curvature.ImportState(prefix + "curvature.", state, Capture.Layers.Select(l => l.Adapter).ToList());
        _generator.set_state(generatorState);
        StepCount = steps;
        Damping = damping;
    }

    /// <summary>Checks that a state under <paramref name="prefix"/> was written for this structure, Fisher and model.</summary>
    /// <exception cref="InvalidDataException">It was not (the message names what differs).</exception>
    public void CheckState(string prefix, NaturalGradientStateDict state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Expect(state, prefix + "structure", Options.Structure.ToString(), "curvature structure");
        Expect(state, prefix + "fisher", Options.Fisher.ToString(), "Fisher");
        Expect(state, prefix + "layers", LayerSignature(), "covered layers");
        if (state.GetNumber(prefix + "curvature_saved") == 0)
            throw new InvalidDataException($"the state does not hold the {Options.Structure.ToString().ToLowerInvariant()} curvature's running state (not supported yet), so the run cannot continue exactly");
    }

    /// <summary>"name:out×in'" for every covered layer, in model order.</summary>
    private string LayerSignature() =>
        string.Join(",", Capture.Layers.Select(l => $"{l.Adapter.Name}:{l.Adapter.OutputDim}x{l.Adapter.InputDim}"));

    private static void Expect(NaturalGradientStateDict state, string key, string expected, string what)
    {
        var found = state.GetText(key);
        if (found != expected)
            throw new InvalidDataException($"the state is for {what} '{found}', but this preconditioner has '{expected}'");
    }
}
