namespace NaturalGradient.Damping;

/// <summary>How damping evolves during training.</summary>
public enum DampingSchedule
{
    /// <summary>λ stays at its initial value.</summary>
    Constant,
    /// <summary>λ adapts to the reduction ratio ρ (<see cref="LevenbergMarquardtDamping"/>).</summary>
    LevenbergMarquardt,
}
