using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Auto;

namespace NaturalGradient.Training;

public sealed partial class OptimizerCatalog
{
    /// <summary>K-BFGS, Krylov subspace descent and the per-layer cost-chosen structure (docs/ALGORITHMS.md).</summary>
    private static void RegisterMethods(OptimizerCatalog catalog)
    {
        catalog.Register("kbfgs", "K-BFGS: Kronecker blocks with G⁻¹ kept by damped BFGS from pre-activation secant pairs",
            ctx => new KbfgsTrainingOptimizer(ctx));
        catalog.Register("ksd", "Krylov subspace descent: minimise the loss in a Krylov subspace of the Gauss-Newton matrix",
            ctx => new KsdTrainingOptimizer(ctx));
        catalog.Register("auto", "per layer, TENGraD or K-FAC, whichever a flop cost model says is cheaper", CreateAuto);
    }

    private static ITrainingOptimizer CreateAuto(OptimizerContext context)
    {
        var optimizer = new NaturalGradientTrainingOptimizer("auto", CurvatureStructure.Auto, context);
        if (optimizer.Optimizer.Preconditioner.Curvature is AutoCurvature auto && context.Log is { } log)
            auto.Chosen += choice => log($"auto: {choice}");
        return optimizer;
    }
}
