using NaturalGradient.Capture;
using static TorchSharp.torch;

namespace NaturalGradient.Curvature.Kfac;

/// <summary>The parts of a Kronecker block's inverse state that one process computes and ships to the others.</summary>
public enum KroneckerInverseState
{
    /// <summary>The factors' eigendecompositions Q_A, eᴬ, Q_G, eᴳ and π (K-FAC with eigen inverses, EKFAC); λ-independent.</summary>
    Decomposition,

    /// <summary>The damped inverses (A + π√λ I)⁻¹ and (G + √λ/π I)⁻¹ with their λ (K-FAC with Cholesky inverses).</summary>
    DampedInverse,
}

/// <summary>
/// Hooks for data-parallel K-FAC and EKFAC in the spirit of KAISA (Pauloski et al. 2021, "KAISA: An Adaptive
/// Second-Order Optimizer Framework for Deep Neural Networks"): the factors A and G come from outside (the running
/// averages of the whole job, summed over processes), and the cubic work — eigendecompositions or damped Cholesky
/// inverses — is done by one process, which ships it to the others as tensors.
/// </summary>
/// <remarks>
/// A process that neither computes nor imports a part must not precondition with the block (it throws). The schedule
/// (first update, T_f, T_inv) is the one of <see cref="ICurvatureBlock.Update"/>; shipped tensors have the factors' dtype
/// except one float64 tensor of scalars (π or λ, and the refresh count).
/// </remarks>
public interface IDistributedKroneckerBlock : ICurvatureBlock
{
    /// <summary>The layer the block covers.</summary>
    ILayerAdapter Layer { get; }

    /// <summary>The block's hyperparameters (schedule, decay).</summary>
    KfacOptions Options { get; }

    /// <summary>True once the block has absorbed statistics.</summary>
    bool IsInitialized { get; }

    /// <summary>The current A (in' × in'), as a fresh alias.</summary>
    Tensor ActivationFactor { get; }

    /// <summary>The current G (out × out), as a fresh alias.</summary>
    Tensor OutputGradientFactor { get; }

    /// <summary>The inverse parts this block has: Decomposition (eigen inverses, EKFAC) or DampedInverse (Cholesky).</summary>
    KroneckerInverseState InversePart { get; }

    /// <summary>
    /// A ← <paramref name="activationFactor"/> (in' × in'), G ← <paramref name="outputGradientFactor"/> (out × out), both the
    /// running averages as <see cref="ICurvatureBlock.Update"/> would have left them at <paramref name="step"/> (copied);
    /// then the inverse schedule of that step, except that a due eigendecomposition is only marked (<see cref="DecompositionDue"/>).
    /// </summary>
    void SetFactors(Tensor activationFactor, Tensor outputGradientFactor, long step);

    /// <summary>True when an eigendecomposition fell due in <see cref="SetFactors"/> and was neither computed nor imported.</summary>
    bool DecompositionDue { get; }

    /// <summary>Computes the due eigendecomposition (and π) from the current factors.</summary>
    void Decompose();

    /// <summary>True when <see cref="ICurvatureBlock.Precondition"/> with <paramref name="damping"/> would rebuild the damped
    /// inverses (Cholesky: due by schedule, or λ changed); always false for the other kinds.</summary>
    bool DampedInverseDue(double damping);

    /// <summary>Builds the damped inverses for <paramref name="damping"/> now (what Precondition does when they are due).</summary>
    void RefreshDampedInverse(double damping);

    /// <summary>The tensors of <paramref name="part"/>: fresh contiguous copies owned by the caller.</summary>
    /// <exception cref="InvalidOperationException">The part has not been computed.</exception>
    IReadOnlyList<Tensor> ExportInverse(KroneckerInverseState part);

    /// <summary>Uninitialised tensors shaped like <see cref="ExportInverse"/>'s, to receive into.</summary>
    IReadOnlyList<Tensor> InverseBuffers(KroneckerInverseState part);

    /// <summary>Takes the tensors of <paramref name="part"/> (as <see cref="ExportInverse"/> gave them on another process) as this block's.</summary>
    void ImportInverse(KroneckerInverseState part, IReadOnlyList<Tensor> tensors);
}
