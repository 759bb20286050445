namespace NaturalGradient.Damping;

/// <summary>How the damping λ is shared among the blocks of a block-diagonal curvature (docs/DAMPING.md).</summary>
public enum LayerDamping
{
    /// <summary>Every block is solved with the same λ: (M_l + λI)⁻¹ g_l.</summary>
    Global,

    /// <summary>
    /// Each block gets its own λ_l = λ · c_l with c_l = tr(M_l) / p_l, the block's mean eigenvalue (floored at 10⁻⁸ of the
    /// largest c over the blocks): λ is then relative to each layer's own curvature scale, so a layer whose metric is
    /// c times larger or smaller (badly scaled inputs, outputs multiplied by a constant) is damped c times more or less,
    /// and the step of a layer does not change when its metric is rescaled. With Levenberg–Marquardt, λ adapts and every
    /// λ_l follows it.
    /// </summary>
    Relative,
}
