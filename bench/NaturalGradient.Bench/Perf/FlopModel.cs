namespace NaturalGradient.Bench.Perf;

/// <summary>One Linear layer of an MLP: W̄ is out × in' (in' = in + 1 with the bias column).</summary>
internal sealed record LayerShape(long In, long Out)
{
    public long InBar => In + 1;
}

/// <summary>
/// Floating-point operation counts of one optimisation step (multiply–add = 2 flops), per method, from the layer
/// shapes and the batch size m. Only the matrix products are counted (they dominate; element-wise passes are not):
/// <list type="bullet">
/// <item>SGD: forward 2m·in'·out, weight gradient 2m·in'·out, input gradient 2m·in·out (not for the first layer).</item>
/// <item>diagonal: (δ∘δ)ᵀ(ā∘ā), 2m·in'·out.</item>
/// <item>TENGraD: Gram matrices ĀĀᵀ and DDᵀ, 2m²(in' + out); J g and Jᵀu, 4m·out·in'; Cholesky of m × m, m³/3; or, for a
/// layer the library solves in parameter space (StructureCostModel.TengradPrefersParameterSpace), J, 2m·p, JᵀJ, 2m·p², and the Cholesky of p × p, p³/3, with p = out·in'.</item>
/// <item>K-FAC: factors ĀᵀĀ and DᵀD, 2m(in'² + out²) (counted as full GEMMs: a symmetric rank-m update needs about
/// half, and the library's 2 × 2 block accumulation of factors from width 384 on does 3/4), amortised over the factor
/// period T_f (a configuration's factors are accumulated every T_f steps; "-f1" configurations every step); G⁻¹VA⁻¹,
/// 2·out·in'(out + in'), or, on the optimizer path where the gradient is the statistics' w DᵀĀ, w (DG⁻¹)ᵀ(ĀA⁻¹),
/// 2m(out² + in'² + out·in'), whichever is fewer (the library takes the cheaper); inverses every T steps: Cholesky and inverse (4/3)d³ per d × d factor, or eigh plus 2d³ to form Q diag Qᵀ.</item>
/// <item>EKFAC: K-FAC's factors and S from the projections DQ_G and ĀQ_A, 2m(out² + in'²) + 2m·out·in', both every
/// T_f steps (amortised); the projected
/// gradient, 2·out·in'(out + in') or (optimizer path) w (DQ_G)ᵀ(ĀQ_A) from S's projections, 2m·out·in', whichever is
/// fewer (on the steps between factor updates, where there are no projections of S, 2·out·in'(out + in') or
/// 2m(out² + in'² + out·in') from D and Ā); the unprojection 2·out·in'(out + in'); eigh every T steps.</item>
/// <item>eigh (LAPACK syevd, divide and conquer): reduction to tridiagonal form (4/3)d³, the tridiagonal eigenvectors at
/// most (4/3)d³, the back-transformation 2d³: ≈ 4.67d³ (earlier versions of this model counted 9d³, the symmetric QR
/// algorithm's figure, which overstated the floors of kfac-eigen and EKFAC).</item>
/// <item>Hessian-free with k CG iterations: the Jᵀu graph once (a backward, 4m Σ in'out) and k G-products of
/// ≈ 8m Σ in'out each (a Jacobian-vector product through the double-backward graph and a transposed one).</item>
/// </list>
/// The FLOP floor of a method is the SGD step as measured plus the method's extra flops at the measured GEMM rate
/// (float32; the -bf16 variants are counted as their float32 methods, so their bfloat16 factor GEMMs may run below it).
/// On the optimizer path the backward pass does not form the weight gradient of a layer whose Δ comes from its rows D
/// and Ā (TENGraD's push-through solve, K-FAC's and EKFAC's mean-gradient route): those layers' 2m·in'·out are taken
/// off the extra flops (for EKFAC, on the factor steps only when the route is otherwise dearer than the products with ḡ).
/// </summary>
internal static class FlopModel
{
    public static double Sgd(IReadOnlyList<LayerShape> layers, long m) =>
        layers.Select((l, i) => 2.0 * m * l.InBar * l.Out * 2 + (i > 0 ? 2.0 * m * l.In * l.Out : 0)).Sum();

    /// <summary>
    /// Flops a method adds to an SGD step (per step: factor updates amortised over <paramref name="factorPeriod"/>, inverse
    /// refreshes over <paramref name="inversePeriod"/>).
    /// </summary>
    /// <param name="optimizerPath">True for <c>NaturalGradientDescent.Step</c>, whose backward skips the weight gradients the rows replace.</param>
    public static double Extra(string method, IReadOnlyList<LayerShape> layers, long m, int inversePeriod, int factorPeriod, int cgIterations, bool optimizerPath) =>
        Products(method, layers, m, inversePeriod, factorPeriod, cgIterations)
        - (optimizerPath ? layers.Sum(l => RowsFraction(method, l, m, factorPeriod) * 2.0 * m * l.InBar * l.Out) : 0);

    /// <summary>The fraction of steps on which the layer's Δ comes from its rows, so that no weight gradient is formed.</summary>
    private static double RowsFraction(string method, LayerShape l, long m, int factorPeriod) => method switch
    {
        "tengrad" => 1,
        "kfac" or "kfac-f1" or "kfac-bf16" or "kfac-eigen" or "kfac-bf16inv" => MeanGradientApply(l, m) < Apply2(l) ? 1 : 0,
        "ekfac" or "ekfac-t10" or "ekfac-f1" or "ekfac-bf16" or "ekfac-bf16inv" =>
            MeanGradientApply(l, m) < Apply2(l) ? 1 : m < l.Out + l.InBar ? 1.0 / factorPeriod : 0,
        _ => 0,
    };

    private static double Products(string method, IReadOnlyList<LayerShape> layers, long m, int inversePeriod, int factorPeriod, int cgIterations) => method switch
    {
        "sgd" or "adam" => 0,
        "diag" => layers.Sum(l => 2.0 * m * l.InBar * l.Out),
        "tengrad" => layers.Sum(l => NaturalGradient.Curvature.Auto.StructureCostModel.TengradPrefersParameterSpace(m, 1, l.InBar, l.Out)
            ? 2.0 * m * l.Out * l.InBar + 2.0 * m * Sq(l.Out * l.InBar) + Cube(l.Out * l.InBar) / 3
            : 2.0 * m * m * (l.InBar + l.Out) + 4.0 * m * l.Out * l.InBar + m * (double)m * m / 3),
        "kfac" or "kfac-f1" or "kfac-bf16" or "kfac-bf16inv" => layers.Sum(l => Factors(l, m) / factorPeriod + Math.Min(Apply2(l), MeanGradientApply(l, m))
                                   + (4.0 / 3) * (Cube(l.InBar) + Cube(l.Out)) / inversePeriod),
        "kfac-eigen" => layers.Sum(l => Factors(l, m) / factorPeriod + Math.Min(Apply2(l), MeanGradientApply(l, m)) + (Eigh + 2) * (Cube(l.InBar) + Cube(l.Out)) / inversePeriod),
        "ekfac" or "ekfac-t10" or "ekfac-f1" or "ekfac-bf16" or "ekfac-bf16inv" => layers.Sum(l => (Factors(l, m) + 2.0 * m * (Sq(l.Out) + Sq(l.InBar)) + 2.0 * m * l.Out * l.InBar) / factorPeriod
                                   + Math.Min(Apply2(l), 2.0 * m * l.Out * l.InBar) / factorPeriod
                                   + Math.Min(Apply2(l), MeanGradientApply(l, m)) * (1 - 1.0 / factorPeriod)
                                   + Apply2(l) + Eigh * (Cube(l.InBar) + Cube(l.Out)) / inversePeriod),
        "hf" => (4.0 + 8.0 * cgIterations) * m * layers.Sum(l => (double)l.InBar * l.Out),
        _ => double.NaN,
    };

    private static double Factors(LayerShape l, long m) => 2.0 * m * (Sq(l.InBar) + Sq(l.Out));
    /// <summary>Flops of eigh per d³ (syevd: 4/3 + 4/3 + 2).</summary>
    private const double Eigh = 4.0 / 3 + 4.0 / 3 + 2;

    private static double MeanGradientApply(LayerShape l, long m) => 2.0 * m * (Sq(l.Out) + Sq(l.InBar) + (double)l.Out * l.InBar);
    private static double Apply2(LayerShape l) => 2.0 * l.Out * l.InBar * (l.Out + l.InBar);
    private static double Sq(long d) => (double)d * d;
    private static double Cube(long d) => (double)d * d * d;
}
