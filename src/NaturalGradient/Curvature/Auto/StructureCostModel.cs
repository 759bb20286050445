using NaturalGradient.Curvature.Kfac;

namespace NaturalGradient.Curvature.Auto;

/// <summary>Which block a layer gets under <see cref="CurvatureStructure.Auto"/>.</summary>
public enum LayerStructure
{
    /// <summary>TENGraD's exact damped block through the n × n Gram matrix (Woodbury).</summary>
    Tengrad,
    /// <summary>K-FAC's Kronecker factors A ⊗ G.</summary>
    Kfac,
}

/// <summary>One layer's decision: the shapes it was made from, both predicted costs (flops per step) and the choice.</summary>
/// <param name="Layer">Dotted layer name.</param>
/// <param name="Samples">n = gradient samples per step (batch size × Fisher samples).</param>
/// <param name="Positions">T (1 for Linear; output pixels for Conv2d).</param>
/// <param name="InputDim">in' (inputs plus the bias column).</param>
/// <param name="OutputDim">out.</param>
/// <param name="TengradFlops">Predicted flops of a TENGraD step.</param>
/// <param name="KfacFlops">Predicted flops of a K-FAC step.</param>
/// <param name="Choice">The cheaper one (TENGraD on a tie: it is exact).</param>
public sealed record LayerStructureChoice(string Layer, long Samples, long Positions, long InputDim, long OutputDim,
    double TengradFlops, double KfacFlops, LayerStructure Choice)
{
    /// <summary>One line for logs: "fc0: kfac (n=128, in'=785, out=100; TENGraD 2.1e+07 flops, K-FAC 1.3e+07)".</summary>
    public override string ToString() => FormattableString.Invariant(
        $"{Layer}: {(Choice == LayerStructure.Tengrad ? "tengrad" : "kfac")} (n={Samples}, T={Positions}, in'={InputDim}, out={OutputDim}; TENGraD {TengradFlops:E2} flops, K-FAC {KfacFlops:E2})");
}

/// <summary>
/// The flop model that picks a layer's block (docs/ALGORITHMS.md, "Per-layer structure by cost"). For a layer with
/// W̄ of out × in', n gradient samples over m inputs and T positions per step:
/// <code>
///   TENGraD  = (nT)²(in' + out)         Gram (ĀĀᵀ) ∘ (DDᵀ), summed over position pairs   seed 000 eq 41
///            + n³/3                     Cholesky of the n × n system
///            + 2 n T · out · in'        two J-products (push-through: Jᵀ1 and Jᵀu)      eq 42–43
///          or, when fewer (a layer with few parameters p = out · in' against n: a small output head),
///            n T · p + n p² + p³/3      J, JᵀJ and the Cholesky of the p × p system (parameter space)
///   K-FAC    = m T in'² + n T out²      factors A and G
///            + c (in'³ + out³) / T_inv  eigendecompositions (c = 9) or Cholesky inverses (c = 1), every T_inv steps
///            + 2 (out² in' + out in'²)  G⁻¹ g A⁻¹ (or the projections into and out of the eigenbasis)
/// </code>
/// For an index layer (Embedding: A = diag(token counts)/m kept as a vector, <see cref="DiagonalActivation"/>) K-FAC's
/// A terms become m T (counting), in' / T_inv (reciprocals) and out · in' (a column scaling) instead of m T in'²,
/// c in'³ / T_inv and 2 out in'², and TENGraD's become (nT)²(1 + out) (index equality instead of ĀĀᵀ) and 2 nT · out
/// (gathers and scatter-adds). Multiply-adds, counted alike for both. Roughly: TENGraD wins when nT ≪ in', out (small batches, wide layers, few
/// positions), K-FAC when nT ≫ in', out.
/// </summary>
public static class StructureCostModel
{
    /// <summary>
    /// Flops of one TENGraD step; <paramref name="indexLayer"/> for an Embedding, whose Gram āᵢₜ·āⱼᵤ = [kᵢₜ = kⱼᵤ] is one
    /// comparison per position pair and whose J-products are gathers and scatter-adds: (nT)²(1 + out) + n³/3 + 2nT·out.
    /// </summary>
    public static double TengradFlops(long samples, long positions, long inputDim, long outputDim, bool indexLayer = false)
    {
        double n = samples, t = positions, i = inputDim, o = outputDim;
        if (indexLayer) return n * t * n * t * (1 + o) + n * n * n / 3 + 2 * n * t * o;
        return Math.Min(TengradGramFlops(samples, positions, inputDim, outputDim), TengradParameterSpaceFlops(samples, positions, inputDim, outputDim));
    }

    /// <summary>
    /// True when TENGraD solves a dense layer in parameter space: its parameter side costs fewer multiply-adds than its
    /// Gram side (<see cref="TengradParameterSpaceFlops"/> &lt; <see cref="TengradGramFlops"/>; a small output head).
    /// </summary>
    public static bool TengradPrefersParameterSpace(long samples, long positions, long inputDim, long outputDim) =>
        TengradParameterSpaceFlops(samples, positions, inputDim, outputDim) < TengradGramFlops(samples, positions, inputDim, outputDim);

    /// <summary>TENGraD's n × n Gram side for a dense layer: (nT)²(in' + out) + n³/3 + 2nT·out·in'.</summary>
    public static double TengradGramFlops(long samples, long positions, long inputDim, long outputDim)
    {
        double n = samples, t = positions, i = inputDim, o = outputDim;
        return n * t * n * t * (i + o) + n * n * n / 3 + 2 * n * t * o * i;
    }

    /// <summary>
    /// TENGraD's parameter side for a dense layer with p = out · in' parameters: nT·p (the per-sample gradients J),
    /// n p² (JᵀJ) and p³/3 (the Cholesky of the p × p system).
    /// </summary>
    public static double TengradParameterSpaceFlops(long samples, long positions, long inputDim, long outputDim)
    {
        double n = samples, t = positions, p = (double)inputDim * outputDim;
        return n * t * p + n * p * p + p * p * p / 3;
    }

    /// <summary>
    /// Flops of one K-FAC step with the given inverse method and inverse period T_inv; <paramref name="diagonalActivation"/>
    /// for an index layer, whose A is a diagonal.
    /// </summary>
    public static double KfacFlops(long batch, long samples, long positions, long inputDim, long outputDim,
        KfacInverseMethod inverse = KfacInverseMethod.Eigen, int inversePeriod = 1, bool diagonalActivation = false)
    {
        double m = batch, n = samples, t = positions, i = inputDim, o = outputDim, period = Math.Max(inversePeriod, 1);
        double c = inverse == KfacInverseMethod.Eigen ? 9 : 1;
        if (diagonalActivation)
            return m * t + n * t * o * o + (i + c * o * o * o) / period + 2 * o * o * i + o * i;
        return m * t * i * i + n * t * o * o + c * (i * i * i + o * o * o) / period + 2 * (o * o * i + o * i * i);
    }

    /// <summary>The decision for one layer.</summary>
    /// <param name="layer">The layer's name (for the report).</param>
    /// <param name="batch">m, the examples of the batch.</param>
    /// <param name="samples">n, the gradient samples (m times the Monte-Carlo samples).</param>
    /// <param name="positions">T, the positions per example (1 for a Linear on m × d inputs).</param>
    /// <param name="inputDim">in', the layer's input width with the bias column (V for an Embedding).</param>
    /// <param name="outputDim">out, the layer's output width.</param>
    /// <param name="kfac">The K-FAC options whose inverse method and period are priced; default <see cref="KfacOptions"/>.</param>
    /// <param name="indexLayer">An Embedding (or Embeddings of one table tied together): both prices use its indices.</param>
    public static LayerStructureChoice Choose(string layer, long batch, long samples, long positions, long inputDim, long outputDim,
        KfacOptions? kfac = null, bool indexLayer = false)
    {
        kfac ??= new KfacOptions();
        double tengrad = TengradFlops(samples, positions, inputDim, outputDim, indexLayer);
        double kfacFlops = KfacFlops(batch, samples, positions, inputDim, outputDim, kfac.InverseMethod, kfac.InverseUpdatePeriod ?? KfacOptions.DefaultInverseUpdatePeriod, indexLayer);
        return new LayerStructureChoice(layer, samples, positions, inputDim, outputDim, tengrad, kfacFlops,
            tengrad <= kfacFlops ? LayerStructure.Tengrad : LayerStructure.Kfac);
    }
}
