namespace NaturalGradient.Training;

public sealed partial class OptimizerCatalog
{
    /// <summary>
    /// ===== Natural-gradient methods: the lead registers them here (main branch). =====
    /// </summary>
    /// <remarks>
    /// Planned names: exact, block, tengrad, diag, kfac, ekfac, hf. Each factory receives an
    /// <see cref="OptimizerContext"/> (model, likelihood, validated <see cref="OptimizerSettings"/>, generator,
    /// steps per epoch, metric batch sampler) and returns an <see cref="ITrainingOptimizer"/>, for example:
    /// <code>
    /// catalog.Register("kfac", "K-FAC: Kronecker-factored natural gradient", ctx => new KfacTrainingOptimizer(ctx));
    /// </code>
    /// A factory may throw <see cref="ArgumentOutOfRangeException"/> naming an <see cref="OptimizerSettings"/>
    /// property (e.g. MaxExactParameters for a model that is too large); the CLI maps it to that option.
    /// </remarks>
    private static void RegisterNaturalGradient(OptimizerCatalog catalog)
    {
        // Sketch of an adapter over Optim.NaturalGradientDescent (one per CurvatureStructure):
        //   var ngd = new NaturalGradientDescent(c.Model, c.Likelihood, new NaturalGradientOptions {
        //       LearningRate = s.LearningRate, Momentum = s.Momentum, WeightDecay = s.WeightDecay,
        //       DampingSchedule = s.DampingSchedule, KlClip = s.KlClip,
        //       Preconditioner = new PreconditionerOptions { Structure = structure, Fisher = s.Fisher,
        //           MonteCarloSamples = s.McSamples, Damping = s.Damping, MaxExactParameters = s.MaxExactParameters } });
        //   Step(x, y): metric batch by s.MetricSource: SameBatch → (null, null); OtherBatch → c.MetricBatches!.Next();
        //               Unlabeled → (c.MetricBatches!.Next(s.UnlabeledCount).X, null);
        //               r = ngd.Step(x, y, mx, my) → new StepResult(r.Loss, r.Damping, double.IsNaN(r.Rho) ? null : r.Rho,
        //                                                          r.PredictedKl, Skipped: !r.Applied)
        //   LearningRate / SetLearningRate → ngd.LearningRate.
        // catalog.Register("exact",   "...", ctx => ...);
        // catalog.Register("block",   "...", ctx => ...);
        // catalog.Register("tengrad", "...", ctx => ...);
        // catalog.Register("diag",    "...", ctx => ...);
        // catalog.Register("kfac",    "...", ctx => ...);
        // catalog.Register("ekfac",   "...", ctx => ...);
        // catalog.Register("hf",      "...", ctx => ...);
        _ = catalog;
    }
}
