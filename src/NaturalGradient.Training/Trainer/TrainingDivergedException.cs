using System.Globalization;

namespace NaturalGradient.Training;

/// <summary>Training stopped because a loss became NaN or infinite.</summary>
public sealed class TrainingDivergedException : Exception
{
    /// <param name="step">Last step taken (1-based; 0 = before the first step).</param>
    /// <param name="epoch">Epoch of that step.</param>
    /// <param name="loss">The non-finite value.</param>
    /// <param name="where">"loss" for a batch loss, or what was evaluated (e.g. "training-set loss after epoch 3").</param>
    /// <param name="partial">What was recorded until then.</param>
    public TrainingDivergedException(long step, int epoch, double loss, string where, TrainingResult partial)
        : base($"training diverged at step {step} (epoch {epoch}): {where} is {loss.ToString(CultureInfo.InvariantCulture)}")
    {
        Step = step;
        Epoch = epoch;
        Loss = loss;
        Partial = partial;
    }

    /// <summary>Last step taken.</summary>
    public long Step { get; }

    /// <summary>Epoch of that step.</summary>
    public int Epoch { get; }

    /// <summary>The non-finite value.</summary>
    public double Loss { get; }

    /// <summary>Steps and epochs recorded before training stopped.</summary>
    public TrainingResult Partial { get; }
}
