using NaturalGradient.Optim;

namespace NaturalGradient.Curvature.Kfac;

internal sealed partial class RunningAverage
{
    /// <summary>Stores the average under <paramref name="key"/> (nothing before the first update).</summary>
    public void ExportState(string key, NaturalGradientStateDict state)
    {
        if (_value is not null) state.SetTensor(key, _value);
    }

    /// <summary>Takes the average under <paramref name="key"/> (none stored: back to "no update yet").</summary>
    public void ImportState(string key, NaturalGradientStateDict state, long[] shape)
    {
        if (state.HasTensor(key)) Replace(state.GetTensor(key, shape));
        else Dispose();
    }
}
