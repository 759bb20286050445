using NaturalGradient.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Optim;

/// <summary>
/// Generator.set_state with the state checked on the managed side first. TorchSharp 0.107's native entry point
/// (THSGenerator_set_rng_state) does not catch libtorch's errors, so a state of another element type, size or device
/// terminates the process instead of throwing. The expected shape is that of the generator's own get_state() (one
/// small copy, on restore only).
/// </summary>
internal static class GeneratorState
{
    /// <summary>Throws unless <paramref name="state"/> has the element type, shape and device of <paramref name="generator"/>'s state.</summary>
    /// <param name="generator">The generator the state is for.</param>
    /// <param name="state">The state to restore.</param>
    /// <param name="what">How the message names the state (e.g. "state tensor 'rng.global'").</param>
    /// <exception cref="InvalidDataException">It does not; the message gives both element types and shapes.</exception>
    public static void Check(Generator generator, Tensor state, string what)
    {
        ArgumentNullException.ThrowIfNull(state);
        using var own = generator.get_state();
        if (state.dtype != own.dtype || !state.Sizes().SequenceEqual(own.Sizes()) || state.device_type != DeviceType.CPU)
            throw new InvalidDataException($"{what} is a {state.dtype} tensor of shape {ShapeText.Of(state.Sizes())}" +
                (state.device_type != DeviceType.CPU ? $" on {state.device}" : "") +
                $"; a random generator's state is a {own.dtype} tensor of shape {ShapeText.Of(own.Sizes())} (from Generator.get_state())");
    }

    /// <summary><see cref="Check"/>, then <c>generator.set_state(state)</c>.</summary>
    /// <param name="generator">The generator to restore.</param>
    /// <param name="state">The state, from get_state().</param>
    /// <param name="what">How the message names the state.</param>
    /// <exception cref="InvalidDataException">The state does not fit the generator.</exception>
    public static void Restore(Generator generator, Tensor state, string what)
    {
        Check(generator, state, what);
        generator.set_state(state);
    }

}
