using NaturalGradient.Capture;
using NaturalGradient.Curvature;
using NaturalGradient.Curvature.Kfac;
using NaturalGradient.Distributed;
using NaturalGradient.Fisher;
using NaturalGradient.Preconditioning;
using NaturalGradient.Tests.Layers;
using NaturalGradient.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace NaturalGradient.Tests.Distributed;

/// <summary>
/// Data-parallel K-FAC (<see cref="DistributedKroneckerCurvature"/>) on one process with an Embedding (whose A is
/// allreduced and shipped as a length-V vector) and a tensor tied in transposed layouts (preconditioned from gathered
/// statistics, not assigned to an owner), and EKFAC over a basis refresh on a step without a factor update: every
/// preconditioned gradient equals the one-process curvature's.
/// </summary>
[Collection("Torch")]
public class DistributedLayerKindsTests
{
    [Theory]
    [InlineData("embedding", KfacDistribution.InverseBroadcast, KfacInverseMethod.Cholesky, CurvatureStructure.Kfac)]
    [InlineData("embedding", KfacDistribution.GradientBroadcast, KfacInverseMethod.Eigen, CurvatureStructure.Kfac)]
    [InlineData("tied-embedding-head", KfacDistribution.InverseBroadcast, KfacInverseMethod.Cholesky, CurvatureStructure.Kfac)]
    [InlineData("tied-embedding-head", KfacDistribution.GradientBroadcast, KfacInverseMethod.Eigen, CurvatureStructure.Kfac)]
    // EKFAC with T_f = 3, T_inv = 4 over 7 steps: its basis changes at step 4, where the factors are not due, and S
    // restarts there from the batch in both.
    [InlineData("embedding", KfacDistribution.InverseBroadcast, KfacInverseMethod.Eigen, CurvatureStructure.Ekfac)]
    [InlineData("sequence", KfacDistribution.GradientBroadcast, KfacInverseMethod.Eigen, CurvatureStructure.Ekfac)]
    public void OneProcess_EqualsTheLocalCurvature(string name, KfacDistribution mode, KfacInverseMethod inverse, CurvatureStructure structure)
    {
        bool ekfac = structure == CurvatureStructure.Ekfac;
        using var scope = NewDisposeScope();
        var c = LayerCases.Create(name);
        var options = new PreconditionerOptions
        {
            Structure = structure, Damping = 1e-2,
            Kfac = new KfacOptions { InverseMethod = inverse, InverseUpdatePeriod = ekfac ? 4 : 2, FactorDecay = 0.8 },
        };
        using var reference = CurvatureFactory.Create(options);
        var parallel = new DataParallel(SingleProcess.Instance);
        parallel.Shard(c.X, c.Y);
        using var distributed = new DistributedKroneckerCurvature((BlockDiagonalCurvature)CurvatureFactory.Create(options), parallel, mode, syncPeriod: 1);
        var likelihood = c.Likelihood;
        for (int step = 0; step < (ekfac ? 7 : 3); step++)
        {
            using var capture = new LayerCapture(c.Model);
            var output = c.Model.call(c.X);
            var stats = new FisherEstimator(likelihood, FisherKind.MonteCarlo).Collect(capture, capture.Recorded(), output, c.Y, new Generator(11 + (ulong)step));
            var layers = stats.Select(s => s.Adapter).ToList();
            distributed.Update(new CurvatureBatch(stats, likelihood, null, step));
            reference.Update(new CurvatureBatch(stats, likelihood, null, step));
            manual_seed(40 + step);
            var gradients = layers.Select(l => randn(l.OutputDim, l.InputDim, dtype: ScalarType.Float64)).ToList();
            double lambda = step == 2 ? 0.03 : 0.01;
            var expected = reference.Precondition(layers, gradients, lambda);
            var actual = distributed.Precondition(layers, gradients, lambda);
            for (int l = 0; l < layers.Count; l++)
                TensorAssert.Close(expected[l], actual[l], rtol: 1e-12, label: $"{name}, {mode}, step {step}: {layers[l].Name}");
        }
    }
}
