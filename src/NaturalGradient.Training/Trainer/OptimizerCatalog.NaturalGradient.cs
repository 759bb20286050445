using NaturalGradient.Curvature;

namespace NaturalGradient.Training;

public sealed partial class OptimizerCatalog
{
    /// <summary>
    /// Registers the curvature structures of the core as trainer methods: exact, block, tengrad, diag, kfac, ekfac, hf,
    /// each a <see cref="NaturalGradientTrainingOptimizer"/> over its <see cref="CurvatureStructure"/>.
    /// </summary>
    /// <remarks>
    /// Each factory receives an
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
        void Add(string name, CurvatureStructure structure, string description) =>
            catalog.Register(name, description, ctx => new NaturalGradientTrainingOptimizer(name, structure, ctx));
        Add("exact", CurvatureStructure.Exact, "exact NGD: dense Fisher over all parameters (small models)");
        Add("block", CurvatureStructure.BlockDiagonal, "block-diagonal NGD: a dense Fisher block per layer");
        Add("tengrad", CurvatureStructure.Tengrad, "TENGraD: exact block-diagonal NGD through the m × m Gram matrix");
        Add("diag", CurvatureStructure.Diagonal, "diagonal Fisher");
        Add("kfac", CurvatureStructure.Kfac, "K-FAC: Kronecker-factored Fisher blocks A ⊗ G");
        Add("ekfac", CurvatureStructure.Ekfac, "EKFAC: K-FAC eigenbasis with re-estimated scaling");
        Add("hf", CurvatureStructure.HessianFree, "Hessian-free natural gradient: Gauss-Newton products solved by CG or MINRES");
    }
}
